const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/** A short date for table cells (the full time goes in a title). */
export function formatDate(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return dateOnly.format(new Date(ms));
}

export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return dateTime.format(new Date(ms));
}

/** "Chrome on Linux" from a user agent string; the raw string stays available in a title. */
export function describeAgent(ua: string | null): string {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chromium-based browser'
        : /Safari\//.test(ua)
          ? 'Safari'
          : /curl|python|node|undici|okhttp|Go-http/i.test(ua)
            ? 'Program'
            : 'Browser';
  const os = /Windows/.test(ua)
    ? 'Windows'
    : /Android/.test(ua)
      ? 'Android'
      : /iPhone|iPad/.test(ua)
        ? 'iOS'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : '';
  return os ? `${browser} on ${os}` : browser;
}
