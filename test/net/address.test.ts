import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyAddress } from '../../server/platform/net/address.js';
import { parseFilterList } from '../../server/platform/net/filter.js';

const hex = (a: number, b: number) => ((a << 8) | b).toString(16);

describe('address classification', () => {
  it('labels the ranges of the guide', () => {
    const cases: [string, string][] = [
      ['8.8.8.8', 'public'],
      ['2606:4700::1111', 'public'],
      ['127.0.0.1', 'loopback'],
      ['::1', 'loopback'],
      ['10.1.2.3', 'private'],
      ['172.20.0.1', 'private'],
      ['192.168.9.9', 'private'],
      ['169.254.3.3', 'link_local'],
      ['fe80::1', 'link_local'],
      ['100.64.0.1', 'cgnat'],
      ['fd00::1', 'unique_local'],
      ['224.0.0.251', 'multicast'],
      ['ff05::2', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['240.1.1.1', 'reserved'],
      ['2001:db8::1', 'reserved'],
      ['::7f00:1', 'loopback'], // IPv4-compatible form carries 127.0.0.1
      ['1::', 'reserved'], // not in 2000::/3
      ['169.254.169.254', 'metadata'],
      ['fd00:ec2::254', 'metadata'],
      ['::ffff:a9fe:a9fe', 'metadata'],
      ['64:ff9b::a9fe:a9fe', 'metadata'],
      ['2002:a9fe:a9fe::', 'metadata'],
      ['fe80::1%eth0', 'invalid'],
      ['0x7f.1', 'invalid'], // only canonical forms come from the URL parser and resolvers
    ];
    for (const [a, c] of cases) expect(classifyAddress(a).class, a).toBe(c);
  });

  it('property: an IPv4 address carried in IPv6 (mapped, compatible, NAT64, 6to4, Teredo) is never public unless the carrier is plain', () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), ([a, b, c, d]) => {
        const v4 = `${a}.${b}.${c}.${d}`;
        const inner = classifyAddress(v4).class;
        const mapped = classifyAddress(`::ffff:${v4}`).class;
        expect(mapped).toBe(inner);
        for (const form of [
          `64:ff9b::${v4}`,
          `2002:${hex(a, b)}:${hex(c, d)}::1`,
          `2001:0:4136:e378:8000:63bf:${hex(255 - a, 255 - b)}:${hex(255 - c, 255 - d)}`,
        ]) {
          const cls = classifyAddress(form).class;
          expect(cls, form).not.toBe('public');
          if (inner === 'metadata') expect(cls, form).toBe('metadata');
        }
        if (a | b | c) expect(classifyAddress(`::${v4}`).class).not.toBe('public');
      }),
      { numRuns: 500 },
    );
  });
});

describe('WEB_FETCH_FILTER_LIST parsing', () => {
  it('accepts names, suffixes, IPs and CIDRs; ! blocks', () => {
    const f = parseFilterList(
      '!internal.example.com, !10.0.0.0/8, *.good.org, .also.org, 203.0.113.5, [2001:db8::1], ok.net.',
    );
    expect(f.block.map((e) => e.kind)).toEqual(['name', 'cidr']);
    expect(f.allow.map((e) => e.name ?? e.cidr![0].toString())).toEqual([
      'good.org',
      'also.org',
      '203.0.113.5',
      '2001:db8::1',
      'ok.net',
    ]);
  });
  it('refuses bad entries', () => {
    for (const bad of ['!10.0.0.0/33', 'a b', '!fe80::/129', 'x/8', '!'])
      expect(() => parseFilterList(bad), bad).toThrow();
  });
});
