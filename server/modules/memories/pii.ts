/**
 * PII redaction for memories (MEMORY_PII_REDACTION). Each kind of data is replaced with a typed
 * placeholder before the text is stored:
 *
 *   e-mail addresses                 → [REDACTED_EMAIL]
 *   card numbers passing Luhn        → [REDACTED_CC]     13–19 digits, optionally in groups
 *   SSN-shaped numbers               → [REDACTED_SSN]    ddd-dd-dddd / ddd dd dddd (impossible SSNs kept)
 *   phone numbers                    → [REDACTED_PHONE]  +international, or (ddd) ddd-dddd / ddd-ddd-dddd
 *
 * The rules prefer a near miss kept over ordinary text destroyed: a digit run is a card only if
 * the Luhn check passes, a bare run of digits without separators or `+` is never a phone number,
 * and dates, versions, IP addresses and times never match (see test/memories/pii.test.ts).
 */

export type PiiKind = 'email' | 'credit_card' | 'ssn' | 'phone';

export const PLACEHOLDERS: Record<PiiKind, string> = {
  email: '[REDACTED_EMAIL]',
  credit_card: '[REDACTED_CC]',
  ssn: '[REDACTED_SSN]',
  phone: '[REDACTED_PHONE]',
};

export interface RedactionResult {
  text: string;
  /** What was found, by kind (absent kinds are omitted). */
  counts: Partial<Record<PiiKind, number>>;
}

/** Luhn checksum over a string of digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

// Local part: RFC 5322 "atext" minus the rarely used characters; domain: labels and a TLD of
// letters that is not a common file extension (`icon@2x.png` is a file name, not an address).
const EMAIL =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?!(?:png|jpe?g|gif|svg|webp|bmp|ico|pdf|txt|json|js|css|html?)(?![A-Za-z0-9-]))[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;

// 13–19 digits, either contiguous or in groups separated by one space or hyphen (the same one).
const CARD = /(?<![\w.,-])(?:\d{13,19}|\d{4}(?:([ -])\d{4}){2}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})(?![\w-]|[.,]\d)/g;

// ddd-dd-dddd or ddd dd dddd (one separator kind), not inside a longer number or word.
const SSN = /(?<![\w.,+-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-]|[.,]\d)/g;

// +CC then 6–14 more digits in groups of 1–5 separated by one space, dot or hyphen (or none),
// with an optional parenthesised area code; North American (ddd) ddd-dddd and ddd-ddd-dddd.
const PHONE_INTL = /(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}(?![\w-]|[.,]\d)/g;
const PHONE_NANP = /(?<![\w.+-])(?:\(\d{3}\) ?|\d{3}([-. ]))\d{3}(?:\1|[-. ])\d{4}(?![\w-]|[.,]\d)/g;

function ssnPossible(area: string, group: string, serial: string): boolean {
  const a = Number(area);
  return a !== 0 && a !== 666 && a < 900 && group !== '00' && serial !== '0000';
}

function digitCount(s: string): number {
  let n = 0;
  for (const c of s) if (c >= '0' && c <= '9') n++;
  return n;
}

/** Replaces PII in `input` with typed placeholders. Pure; safe on any text. */
export function redactPii(input: string): RedactionResult {
  const counts: Partial<Record<PiiKind, number>> = {};
  const hit = (k: PiiKind) => {
    counts[k] = (counts[k] ?? 0) + 1;
    return PLACEHOLDERS[k];
  };
  let text = input.replace(EMAIL, () => hit('email'));
  text = text.replace(CARD, (m) => {
    const digits = m.replace(/[ -]/g, '');
    return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) ? hit('credit_card') : m;
  });
  text = text.replace(SSN, (m, area: string, _sep: string, group: string, serial: string) =>
    ssnPossible(area, group, serial) ? hit('ssn') : m,
  );
  text = text.replace(PHONE_INTL, (m) => {
    const n = digitCount(m);
    return n >= 8 && n <= 15 ? hit('phone') : m;
  });
  text = text.replace(PHONE_NANP, () => hit('phone'));
  return { text, counts };
}
