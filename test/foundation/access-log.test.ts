import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { accessLogger, createLogger, type AccessLine } from '../../server/platform/log/logger.js';

function sink(lines: string[]) {
  return new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
}

const LINES: AccessLine[] = [
  {
    reqId: 'f3b0c442-98fc-4c14-9afb-f4c8996fb924',
    method: 'POST',
    url: '/api/v1/chat/completions',
    status: 200,
    ms: 1.2,
    ip: '127.0.0.1',
  },
  {
    reqId: 'r"1\\',
    method: 'GET',
    url: '/api/v1/x?q="é\u2028\n</script>&token=[REDACTED]',
    status: 404,
    ms: 0,
    ip: '::1',
  },
  { reqId: 'id', method: 'DELETE', url: '/a b', status: 503, ms: 12345.6, ip: '' },
];

describe('access log line', () => {
  it('is exactly what pino writes for the same fields (JSON format)', () => {
    const fast: string[] = [];
    const viaPino: string[] = [];
    const a = createLogger({ LOG_FORMAT: 'json', GLOBAL_LOG_LEVEL: 'INFO' }, sink(fast));
    const b = createLogger({ LOG_FORMAT: 'json', GLOBAL_LOG_LEVEL: 'INFO' }, sink(viaPino));
    const write = accessLogger(a);
    for (const l of LINES) {
      write(l, { info: () => expect.unreachable('the JSON logger formats the line itself') });
      b.child({ reqId: l.reqId }).info(
        { method: l.method, url: l.url, status: l.status, ms: l.ms, ip: l.ip },
        'request',
      );
    }
    expect(fast).toHaveLength(LINES.length);
    for (let i = 0; i < LINES.length; i++) {
      const x = JSON.parse(fast[i]!) as Record<string, unknown>;
      const y = JSON.parse(viaPino[i]!) as Record<string, unknown>;
      expect(typeof x.time).toBe('string');
      expect(Number.isNaN(Date.parse(x.time as string))).toBe(false);
      delete x.time;
      delete y.time;
      expect(x).toEqual(y);
      expect(Object.keys(x)).toEqual(Object.keys(y));
      expect(fast[i]!.endsWith('}\n')).toBe(true);
      expect(fast[i]!.slice(0, -1)).not.toContain('\n');
    }
  });

  it('honours GLOBAL_LOG_LEVEL above INFO', () => {
    const out: string[] = [];
    const write = accessLogger(createLogger({ LOG_FORMAT: 'json', GLOBAL_LOG_LEVEL: 'WARNING' }, sink(out)));
    write(LINES[0]!, { info: () => expect.unreachable() });
    expect(out).toEqual([]);
  });

  it('goes through the request logger when the logger is not one of ours', () => {
    const calls: unknown[] = [];
    const pinoLike = pino({ level: 'info' }, sink([]));
    const write = accessLogger(pinoLike);
    write(LINES[0]!, { info: (o, msg) => calls.push([o, msg]) });
    expect(calls).toEqual([
      [{ method: 'POST', url: '/api/v1/chat/completions', status: 200, ms: 1.2, ip: '127.0.0.1' }, 'request'],
    ]);
  });
});
