import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import type pinoPretty from 'pino-pretty';
import type { Config } from '../../config/index.js';

const LEVELS: Record<Config['GLOBAL_LOG_LEVEL'], pino.Level> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'fatal',
};

/** Keys whose values never reach a log line, at any depth we log. */
export const REDACT_PATHS = [
  'password',
  'new_password',
  'token',
  'api_key',
  'secret',
  'authorization',
  'cookie',
  '*.password',
  '*.new_password',
  '*.token',
  '*.api_key',
  '*.secret',
  '*.authorization',
  '*.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

const SECRET_QUERY = /([?&][^=&]*(?:token|secret|key|password|code)[^=&]*=)[^&]*/gi;

/** Removes secret-looking query values from a URL before it is logged. */
export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(SECRET_QUERY, '$1[REDACTED]') : url;
}

let lastMs = -1;
let lastTime = '';
/** pino's ISO-8601 `time` field, formatted once per millisecond (several lines share one under load). */
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

let sink: pino.DestinationStream | null = null;

/**
 * Standard output for JSON lines, shared by every logger of the process. The one-per-request
 * access line (`"msg":"request"`) is gathered into synchronous writes of at least 4 KiB (measured:
 * half the CPU of pino's default asynchronous writes, one write per dozen requests instead of one
 * per request) and flushed at least every 500 ms; every other line (start-up, warnings, errors)
 * is written at once, after what was gathered, so the order of lines is kept. Everything is
 * flushed when the process exits (also after an uncaught exception); only a SIGKILL can lose up
 * to 500 ms of access lines. A stalled reader of standard output slows the server down rather
 * than growing its memory.
 */
function stdoutSink(): pino.DestinationStream {
  if (sink) return sink;
  const out = pino.destination({ dest: 1, sync: true, minLength: 4096 });
  const flush = () => {
    try {
      out.flush();
    } catch {
      /* closed or not writable: nothing more can be done */
    }
  };
  setInterval(flush, 500).unref();
  process.on('exit', () => {
    try {
      out.flushSync();
    } catch {
      /* as above */
    }
  });
  sink = {
    write(line: string) {
      out.write(line);
      if (!line.includes('"msg":"request"')) flush();
    },
  };
  return sink;
}

export function createLogger(
  config: Pick<Config, 'LOG_FORMAT' | 'GLOBAL_LOG_LEVEL'>,
  destination?: pino.DestinationStream,
): Logger {
  const opts: pino.LoggerOptions = {
    level: LEVELS[config.GLOBAL_LOG_LEVEL],
    base: { service: 'hrida-ai' },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        method: req.method,
        url: redactUrl(req.url),
        ip: req.ip,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    timestamp: isoTime,
  };
  if (destination) return jsonLogger(pino(opts, destination), destination);
  if (config.LOG_FORMAT === 'json') {
    const out = stdoutSink();
    return jsonLogger(pino(opts, out), out);
  }
  // The text formatter is loaded only for LOG_FORMAT=text.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof pinoPretty;
  return pino(
    opts,
    pretty({
      sync: true,
      colorize: false,
      singleLine: true,
      translateTime: 'SYS:standard',
      ignore: 'pid,hostname,service',
    }),
  );
}

const ACCESS_SINK = Symbol('hridaai.accessSink');

function jsonLogger(log: Logger, out: pino.DestinationStream): Logger {
  (log as Logger & { [ACCESS_SINK]?: pino.DestinationStream })[ACCESS_SINK] = out;
  return log;
}

export interface AccessLine {
  reqId: string;
  method: string;
  /** Already passed through redactUrl. */
  url: string;
  status: number;
  ms: number;
  ip: string;
}

/**
 * The one-per-request access line. For a JSON logger made by createLogger it is formatted here,
 * byte for byte what pino writes for `req.log.info({method, url, status, ms, ip}, 'request')`
 * (the fields are fixed and hold nothing to redact; strings are JSON-escaped): about a quarter of
 * the cost of going through pino on the hot path. Any other logger (the text format, a logger
 * given to buildApp) gets the pino call.
 */
export function accessLogger(log: Logger): (line: AccessLine, reqLog: { info(o: object, msg: string): void }) => void {
  const out = (log as Logger & { [ACCESS_SINK]?: pino.DestinationStream })[ACCESS_SINK];
  if (!out)
    return (l, reqLog) =>
      reqLog.info({ method: l.method, url: l.url, status: l.status, ms: l.ms, ip: l.ip }, 'request');
  return (l) => {
    if (!log.isLevelEnabled('info')) return;
    out.write(
      `{"level":30${isoTime()},"service":"hrida-ai","reqId":${JSON.stringify(l.reqId)},"method":${JSON.stringify(l.method)},"url":${JSON.stringify(l.url)},"status":${l.status},"ms":${l.ms},"ip":${JSON.stringify(l.ip)},"msg":"request"}\n`,
    );
  };
}
