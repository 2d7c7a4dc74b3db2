/** The server's default when IFRAME_CSP is unset (server/modules/files/sandbox.ts). */
export const DEFAULT_IFRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The policy is the very first thing in the document, before any byte of the content: nothing in
 * the content (a comment, a `<head>`, a script) can come before it, and a policy once parsed cannot
 * be lifted.
 */
export function sandboxDocument(html: string, policy: string): string {
  return `<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="${escapeAttr(policy)}"><meta charset="utf-8">${html}`;
}

/** HTML and SVG code blocks of an answer. */
export function findArtifacts(markdown: string): { lang: string; code: string }[] {
  const out: { lang: string; code: string }[] = [];
  const re = /^(`{3,}|~{3,})[ \t]*(html|svg)\b[^\n]*\n([\s\S]*?)\n\1[ \t]*$/gim;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push({ lang: m[2]!.toLowerCase(), code: m[3]! });
  return out.slice(0, 10);
}
