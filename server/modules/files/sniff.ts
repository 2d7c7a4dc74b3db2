/**
 * Content sniffing by magic bytes. The client's Content-Type is never trusted: an upload whose
 * bytes contradict its extension (a `.png` holding HTML or SVG, a `.pdf` that is a ZIP) is refused.
 */
export type Sniffed =
  'empty' | 'pdf' | 'png' | 'jpeg' | 'gif' | 'webp' | 'zip' | 'gzip' | 'elf' | 'pe' | 'text' | 'binary';

export const SNIFF_BYTES = 8192;

function startsWith(b: Buffer, sig: number[], offset = 0): boolean {
  if (b.length < offset + sig.length) return false;
  return sig.every((x, i) => b[offset + i] === x);
}

function isText(head: Buffer): boolean {
  if (head.includes(0)) {
    // UTF-16 with a BOM is text too
    return (head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff);
  }
  // Valid UTF-8, allowing a character cut at the end of the sample.
  for (let cut = 0; cut <= 3 && cut < head.length; cut++) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, head.length - cut));
      return true;
    } catch {
      /* try a shorter sample */
    }
  }
  return false;
}

export function sniff(head: Buffer): Sniffed {
  if (head.length === 0) return 'empty';
  if (startsWith(head, [0x25, 0x50, 0x44, 0x46, 0x2d])) return 'pdf'; // %PDF-
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(head, [0x47, 0x49, 0x46, 0x38, 0x37, 0x61]) || startsWith(head, [0x47, 0x49, 0x46, 0x38, 0x39, 0x61]))
    return 'gif';
  if (startsWith(head, [0x52, 0x49, 0x46, 0x46]) && startsWith(head, [0x57, 0x45, 0x42, 0x50], 8)) return 'webp';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06])) return 'zip';
  if (startsWith(head, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(head, [0x7f, 0x45, 0x4c, 0x46])) return 'elf';
  if (startsWith(head, [0x4d, 0x5a])) return 'pe';
  return isText(head) ? 'text' : 'binary';
}

/** Markup a browser would run if it rendered the bytes (used for labels and image checks). */
export function looksLikeMarkup(head: Buffer): boolean {
  const s = head.subarray(0, 2048).toString('latin1').toLowerCase();
  return /<\s*(!doctype|html|head|body|script|iframe|svg|object|embed|\?xml|meta|img|a\s)/.test(s);
}

const TEXT_EXTS = [
  'txt',
  'text',
  'md',
  'markdown',
  'mdx',
  'rst',
  'csv',
  'tsv',
  'json',
  'jsonl',
  'ndjson',
  'yaml',
  'yml',
  'toml',
  'ini',
  'cfg',
  'conf',
  'log',
  'xml',
  'html',
  'htm',
  'xhtml',
  'svg',
  'css',
  'js',
  'mjs',
  'cjs',
  'ts',
  'tsx',
  'jsx',
  'py',
  'rb',
  'go',
  'rs',
  'java',
  'kt',
  'c',
  'h',
  'cc',
  'cpp',
  'hpp',
  'cs',
  'php',
  'sh',
  'bash',
  'zsh',
  'sql',
  'r',
  'tex',
  'srt',
  'vtt',
  'eml',
  'ics',
  'vcf',
];

/** What the bytes must be for a given extension. Extensions not listed here cannot be contradicted. */
const EXPECTED: Record<string, readonly Sniffed[]> = {
  pdf: ['pdf'],
  png: ['png'],
  jpg: ['jpeg'],
  jpeg: ['jpeg'],
  jpe: ['jpeg'],
  gif: ['gif'],
  webp: ['webp'],
  docx: ['zip'],
  xlsx: ['zip'],
  pptx: ['zip'],
  odt: ['zip'],
  ods: ['zip'],
  odp: ['zip'],
  epub: ['zip'],
  zip: ['zip'],
  gz: ['gzip'],
  tgz: ['gzip'],
  ...Object.fromEntries(TEXT_EXTS.map((e) => [e, ['text', 'empty'] as const])),
};

const MIME: Record<string, string> = {
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  jpe: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  epub: 'application/epub+zip',
  zip: 'application/zip',
  gz: 'application/gzip',
  txt: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  json: 'application/json',
  html: 'text/html',
  htm: 'text/html',
  xml: 'application/xml',
  svg: 'image/svg+xml',
};

export function contentTypeFor(ext: string, sniffed: Sniffed): string {
  if (MIME[ext]) return MIME[ext]!;
  if (EXPECTED[ext]?.includes('text')) return 'text/plain';
  return sniffed === 'text' ? 'text/plain' : 'application/octet-stream';
}

/** null when the bytes agree with the extension; otherwise the reason. */
export function contradiction(ext: string, sniffed: Sniffed): string | null {
  const expected = EXPECTED[ext];
  if (!expected) return null;
  if (expected.includes(sniffed)) return null;
  const what = sniffed === 'text' ? 'text or markup' : sniffed === 'empty' ? 'empty' : `${sniffed.toUpperCase()} data`;
  return `The content is ${what}, which does not match the .${ext} extension`;
}

/** Types a browser could execute: never served with their own type, even as an attachment. */
export function isActiveContentType(ct: string): boolean {
  return /html|svg|xml|javascript|ecmascript/i.test(ct);
}
