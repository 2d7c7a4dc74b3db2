import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contentDisposition, extensionOf, sanitizeFilename } from '../../server/modules/files/names.js';
import { contradiction, sniff } from '../../server/modules/files/sniff.js';
import { parseExtensionList } from '../../server/config/settings/files.js';

describe('file names', () => {
  it('never yields a path, a control or bidi character, or more than 255 bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (raw) => {
        const n = sanitizeFilename(raw);
        expect(n.length).toBeGreaterThan(0);
        expect(
          [...n].some(
            (c) =>
              /[\\/]/.test(c) ||
              c.charCodeAt(0) < 0x20 ||
              c === '\u007f' ||
              (c >= '\u202a' && c <= '\u202e') ||
              (c >= '\u2066' && c <= '\u2069'),
          ),
        ).toBe(false);
        expect(n).not.toMatch(/^\.|\.$/);
        expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
        expect(
          /[\r\n]/.test(contentDisposition('attachment', n)) || contentDisposition('attachment', n).includes('\u0000'),
        ).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
  it('handles the classic cases', () => {
    expect(sanitizeFilename('..')).toBe('file');
    expect(sanitizeFilename('../../x/../..')).toBe('file');
    expect(sanitizeFilename('/etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('C:\\Windows\\system.ini')).toBe('system.ini');
    expect(sanitizeFilename('report\u202Efdp.exe')).toBe('reportfdp.exe');
    expect(extensionOf(sanitizeFilename('report\u202Efdp.exe'))).toBe('exe');
    expect(extensionOf('A.PDF')).toBe('pdf');
    expect(extensionOf('noext')).toBe('');
  });
});

describe('RAG_ALLOWED_FILE_EXTENSIONS parsing', () => {
  it('.pdf, pdf, PDF and *.pdf are the same', () => {
    expect(parseExtensionList('.pdf, PDF,pdf,*.PDF ,.Txt')).toEqual(['pdf', 'txt']);
    expect(parseExtensionList('')).toEqual([]);
    expect(() => parseExtensionList('.p df')).toThrow();
  });
});

describe('magic bytes', () => {
  it('detects the formats and contradictions', () => {
    expect(sniff(Buffer.from('%PDF-1.7'))).toBe('pdf');
    expect(sniff(Buffer.from('<svg/>'))).toBe('text');
    expect(contradiction('png', sniff(Buffer.from('<svg/>')))).toMatch(/does not match the \.png/);
    expect(contradiction('txt', sniff(Buffer.from('plain')))).toBeNull();
    expect(contradiction('bin', sniff(Buffer.from([0, 1, 2])))).toBeNull();
    expect(contradiction('csv', sniff(Buffer.from([0xff, 0xfe, 0x41, 0x00])))).toBeNull(); // UTF-16 text
  });
});
