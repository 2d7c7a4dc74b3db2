/**
 * IFRAME_CSP, server side. Untrusted HTML (artifacts, HTML previews, citations) must carry a policy
 * the document itself cannot remove or precede:
 * - `previewHeaders()` puts it in HTTP headers of a response the UI loads into an iframe: a
 *   `sandbox allow-scripts` policy (opaque origin: no cookies, no same-origin API access) and the
 *   admin's IFRAME_CSP as a second policy. Both are enforced; the content cannot loosen either.
 * - `wrapUntrustedHtml()` is for `srcdoc` rendering: the `<meta http-equiv>` policy is the very
 *   first thing in the document, before any byte of the content, so no comment, `<head>` trick
 *   or script in the content can come before it (a policy, once parsed, cannot be removed).
 */
export const DEFAULT_PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

export function effectiveIframeCsp(iframeCsp: string | null): string {
  return iframeCsp ?? DEFAULT_PREVIEW_CSP;
}

export function previewHeaders(iframeCsp: string | null): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `sandbox allow-scripts; frame-ancestors 'self', ${effectiveIframeCsp(iframeCsp)}`,
    'x-content-type-options': 'nosniff',
    'cross-origin-resource-policy': 'same-origin',
    'referrer-policy': 'no-referrer',
    'cache-control': 'private, no-store',
  };
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeHtml(s: string): string {
  return escapeAttr(s).replace(/'/g, '&#39;');
}

/** The policy first, then the untrusted document. */
export function wrapUntrustedHtml(html: string, iframeCsp: string | null): string {
  return `<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="${escapeAttr(effectiveIframeCsp(iframeCsp))}"><meta charset="utf-8">${html}`;
}
