import { unzipSync } from 'fflate';
import { AppError } from '../../platform/http/errors.js';

/**
 * Text extraction for knowledge documents: txt, md, csv, json, html in-process; pdf through unpdf
 * (pdf.js); docx by reading word/document.xml from the ZIP (fflate) — no macros, no external
 * references are ever followed. Output is capped.
 */
export const MAX_EXTRACTED_CHARS = 2_000_000;
const MAX_DOCX_XML_BYTES = 50 * 1024 * 1024;

export interface Extracted {
  text: string;
  title?: string;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});/gi, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : '';
    }
    return NAMED[e.toLowerCase()] ?? m;
  });
}

function tidy(s: string): string {
  return s
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\f\v\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()
    .slice(0, MAX_EXTRACTED_CHARS);
}

/** HTML → readable text (scripts, styles, templates and comments dropped; blocks become lines). */
export function htmlToText(html: string): Extracted {
  const titleMatch = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  let s = html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style|noscript|template|svg|head|iframe|object)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<(br|hr)\b[^>]*>/gi, '\n')
    .replace(
      /<\/?(p|div|section|article|header|footer|main|nav|aside|li|ul|ol|tr|table|h[1-6]|blockquote|pre|dt|dd|figure|figcaption)\b[^>]*>/gi,
      '\n',
    )
    .replace(/<\/?(td|th)\b[^>]*>/gi, '\t')
    .replace(/<[^>]*>/g, '');
  s = decodeEntities(s);
  const title = titleMatch ? tidy(decodeEntities(titleMatch[1]!.replace(/<[^>]*>/g, ''))).slice(0, 300) : undefined;
  return { text: tidy(s), ...(title ? { title } : {}) };
}

function docxToText(bytes: Buffer): string {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(new Uint8Array(bytes), {
      filter: (f) => {
        if (f.name !== 'word/document.xml') return false;
        if (f.originalSize > MAX_DOCX_XML_BYTES)
          throw new AppError('extraction_failed', 'The document is too large to read');
        return true;
      },
    });
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw new AppError('extraction_failed', 'The .docx file could not be read');
  }
  const xml = files['word/document.xml'];
  if (!xml) throw new AppError('extraction_failed', 'The .docx file has no document body');
  if (xml.length > MAX_DOCX_XML_BYTES) throw new AppError('extraction_failed', 'The document is too large to read');
  const doc = Buffer.from(xml).toString('utf8');
  const paragraphs: string[] = [];
  for (const p of doc.matchAll(/<w:p[\s>][\s\S]*?<\/w:p>/g)) {
    let line = '';
    for (const t of p[0].matchAll(/<w:t(?:\s[^>]*)?>([\s\S]*?)<\/w:t>|<w:(tab|br|cr)\b[^>]*\/>/g)) {
      if (t[2] === 'tab') line += '\t';
      else if (t[2]) line += '\n';
      else line += decodeEntities(t[1] ?? '');
    }
    paragraphs.push(line);
  }
  return paragraphs.join('\n');
}

async function pdfToText(bytes: Buffer): Promise<string> {
  const { extractText, getDocumentProxy } = await import('unpdf');
  try {
    const doc = await getDocumentProxy(new Uint8Array(bytes), { isEvalSupported: false, disableFontFace: true });
    try {
      const { text } = await extractText(doc, { mergePages: false });
      return (text as string[]).join('\n\n');
    } finally {
      await doc.destroy().catch(() => undefined);
    }
  } catch {
    throw new AppError('extraction_failed', 'The PDF could not be read');
  }
}

const TEXT_EXTS = new Set(['txt', 'text', 'md', 'markdown', 'csv', 'tsv', 'log', 'rst', 'yaml', 'yml', 'xml']);

function utf8(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  return new TextDecoder('utf-8').decode(bytes).replace(/^\ufeff/, '');
}

/** Extracts text by extension (the upload path has already checked the bytes agree with it). */
export async function extractText(bytes: Buffer, ext: string, contentType = ''): Promise<Extracted> {
  const e = ext.toLowerCase();
  if (e === 'pdf' || contentType === 'application/pdf') return { text: tidy(await pdfToText(bytes)) };
  if (e === 'docx') return { text: tidy(docxToText(bytes)) };
  if (e === 'html' || e === 'htm' || e === 'xhtml' || contentType === 'text/html') return htmlToText(utf8(bytes));
  if (e === 'json' || contentType === 'application/json') {
    const raw = utf8(bytes);
    try {
      return { text: tidy(JSON.stringify(JSON.parse(raw), null, 1)) };
    } catch {
      return { text: tidy(raw) };
    }
  }
  if (TEXT_EXTS.has(e) || contentType.startsWith('text/')) return { text: tidy(utf8(bytes)) };
  throw new AppError('extraction_failed', `Text cannot be extracted from .${e || '(no extension)'} files`);
}
