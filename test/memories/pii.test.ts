import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { luhnValid, redactPii } from '../../server/modules/memories/pii.js';

/** [input, expected output] — what must be redacted, with the typed placeholder. */
const REDACT: [string, string][] = [
  // card numbers passing Luhn: contiguous, spaced, hyphenated, Amex grouping, 13 to 19 digits
  ['card 4111 1111 1111 1111 ok', 'card [REDACTED_CC] ok'],
  ['4111-1111-1111-1111.', '[REDACTED_CC].'],
  ['pay with 4111111111111111', 'pay with [REDACTED_CC]'],
  ['amex 378282246310005', 'amex [REDACTED_CC]'],
  ['amex 3782 822463 10005', 'amex [REDACTED_CC]'],
  ['old visa 4222222222222', 'old visa [REDACTED_CC]'],
  ['mc 5555555555554444, exp 12/29', 'mc [REDACTED_CC], exp 12/29'],
  ['discover 6011 1111 1111 1117', 'discover [REDACTED_CC]'],
  ['19 digits 6304000000000000000 card', '19 digits [REDACTED_CC] card'],
  // SSN-shaped
  ['my ssn is 123-45-6789.', 'my ssn is [REDACTED_SSN].'],
  ['ssn 078 05 1120', 'ssn [REDACTED_SSN]'],
  // e-mail addresses
  ['mail john.doe+tag@example.co.uk!', 'mail [REDACTED_EMAIL]!'],
  ['<A@b.io>', '<[REDACTED_EMAIL]>'],
  ['first_last@sub.example-domain.com', '[REDACTED_EMAIL]'],
  // phone numbers
  ['call +1 555 123 4567', 'call [REDACTED_PHONE]'],
  ['office +44 20 7946 0958', 'office [REDACTED_PHONE]'],
  ['+49 30 1234567', '[REDACTED_PHONE]'],
  ['(555) 123-4567', '[REDACTED_PHONE]'],
  ['555-123-4567', '[REDACTED_PHONE]'],
  ['555.123.4567 (home)', '[REDACTED_PHONE] (home)'],
  ['+33 (0)1 23 45 67 89', '[REDACTED_PHONE]'],
  ['+1-202-555-0143', '[REDACTED_PHONE]'],
  ['+14155552671', '[REDACTED_PHONE]'],
  // several in one text, each typed
  [
    'Reach me at ana@example.com or +1 415 555 2671; card 4111111111111111; SSN 219-09-9999',
    'Reach me at [REDACTED_EMAIL] or [REDACTED_PHONE]; card [REDACTED_CC]; SSN [REDACTED_SSN]',
  ],
];

/** Near misses: must come back unchanged. */
const KEEP: string[] = [
  '4111 1111 1111 1112', // fails Luhn
  '1234-5678-9012-3456', // fails Luhn (the classic "example card")
  'acct 4111111111111112',
  'order 12345678',
  'invoice 2024000123',
  '5551234567', // bare digits are not a phone number
  'date 2024-01-15',
  '2024-01-15 10:00',
  'time 12:30:45',
  'version 1.2.3.4',
  'v10.100.200.3000',
  'ip 192.168.1.10',
  'ipv6 fe80::1ff:fe23:4567:890a',
  '000-12-3456', // impossible SSN (area 000)
  '666-12-3456', // impossible SSN (area 666)
  '912-12-3456', // impossible SSN (area 9xx)
  '123-00-4567', // impossible SSN (group 00)
  '123-45-0000', // impossible SSN (serial 0000)
  '123-45-67890', // too long
  '1234-56-7890',
  'ref 12-345-6789',
  'price $1,234,567.89',
  'year 2024 and 1999',
  'user@localhost',
  'a@b',
  'email at example dot com',
  '@handle on social media',
  'icon@2x.png',
  'isbn 978-3-16-148410-0',
  'uuid 550e8400-e29b-41d4-a716-446655440000',
  'coords 48.8566, 2.3522',
  'numbers 1 2 3 4 5 6 7 8',
  'PO 123 456 7890123',
  'iban DE89 3704 0044 0532 0130 00',
  'score +3 10 20',
  '1.5551234567',
  'sha 3f786850e387550fdab836ed7e6dc881de23001b',
];

describe('PII redaction corpus', () => {
  it.each(REDACT)('redacts %j', (input, expected) => {
    expect(redactPii(input).text).toBe(expected);
  });

  it.each(KEEP)('keeps the near miss %j', (input) => {
    expect(redactPii(input).text).toBe(input);
    expect(redactPii(input).counts).toEqual({});
  });

  it('counts what it found, by kind', () => {
    const r = redactPii('a@b.co c@d.io 4111111111111111 +44 20 7946 0958 123-45-6789');
    expect(r.counts).toEqual({ email: 2, credit_card: 1, phone: 1, ssn: 1 });
  });

  it('Luhn', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('')).toBe(false);
    expect(luhnValid('12a4')).toBe(false);
  });

  it('every generated valid card number is redacted, whatever the grouping', () => {
    const cardDigits = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 14, maxLength: 14 }).map((ds) => {
      const body = [4, ...ds].join('');
      for (let c = 0; c <= 9; c++) if (luhnValid(body + c)) return body + c;
      throw new Error('unreachable');
    });
    fc.assert(
      fc.property(cardDigits, fc.constantFrom('', ' ', '-'), (digits, sep) => {
        const grouped = digits.match(/.{4}/g)!.join(sep);
        return redactPii(`card: ${grouped} thanks`).text === 'card: [REDACTED_CC] thanks';
      }),
    );
  });

  // Catastrophic backtracking would hang here (the test's timeout is the guard, not a benchmark).
  it('is total on arbitrary and hostile input', { timeout: 20_000 }, () => {
    fc.assert(fc.property(fc.string({ maxLength: 500 }), (s) => typeof redactPii(s).text === 'string'));
    const hostile = `${'1 '.repeat(5000)}${'a@'.repeat(5000)}${'+1 '.repeat(5000)}${'-1'.repeat(5000)}${'a.'.repeat(5000)}@`;
    expect(redactPii(hostile).text.length).toBeGreaterThan(0);
  });
});
