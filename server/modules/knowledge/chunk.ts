/**
 * Splits text into passages of about `size` characters with `overlap`, preferring paragraph, then
 * line, then sentence, then word boundaries.
 */
export function chunkText(text: string, size = 1200, overlap = 150): string[] {
  const clean = text.trim();
  if (!clean) return [];
  const out: string[] = [];
  let start = 0;
  while (start < clean.length) {
    let end = Math.min(start + size, clean.length);
    if (end < clean.length) {
      const window = clean.slice(start, end);
      const min = Math.floor(size * 0.5);
      const cut = [/\n\n(?![\s\S]*\n\n)/, /\n(?![\s\S]*\n)/, /[.!?。](?=\s)(?![\s\S]*[.!?。]\s)/, /\s(?![\s\S]*\s)/]
        .map((re) => {
          const m = re.exec(window);
          return m ? m.index + m[0].length : -1;
        })
        .find((i) => i >= min);
      if (cut !== undefined) end = start + cut;
    }
    const piece = clean.slice(start, end).trim();
    if (piece) out.push(piece);
    if (end >= clean.length) break;
    start = Math.max(end - overlap, start + 1);
    // do not start in the middle of a word
    const ws = clean.slice(start, end).search(/\s/);
    if (ws > 0 && ws < overlap) start += ws + 1;
  }
  return out;
}
