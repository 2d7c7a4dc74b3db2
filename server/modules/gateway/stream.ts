import { StringDecoder } from 'node:string_decoder';

/**
 * Stream relays: bytes come in from the upstream and go out to the client as soon as an event is
 * complete (no response buffering). The relays only look inside the few events that matter: the
 * usage frame (recorded; dropped when the client did not ask for it — HridaAI always asks the
 * upstream for it), an upstream error frame (replaced by HridaAI's own terminal error event, so no
 * upstream body reaches the client) and the end marker.
 */

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface RelayStats {
  usage: Usage | null;
  /** Content events seen (the completion estimate when no usage frame arrives). */
  chunks: number;
  done: boolean;
  /** The upstream sent an error event (the stream ended there). */
  upstreamError: boolean;
}

export interface Relay {
  readonly stats: RelayStats;
  /** Text to send now for this upstream chunk ('' when the event is not complete yet). */
  push(chunk: Buffer): string;
  /** Text left when the upstream ends. */
  end(): string;
}

export function errorEvent(message: string, type: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type, code } })}\n\n`;
}

export const UPSTREAM_STREAM_ERROR = () =>
  errorEvent('The model server failed while streaming the response', 'upstream_error', 'upstream_error');

function asUsage(u: unknown): Usage | null {
  const o = u as Partial<Usage> | null;
  if (!o || typeof o !== 'object' || typeof o.prompt_tokens !== 'number') return null;
  const completion = typeof o.completion_tokens === 'number' ? o.completion_tokens : 0;
  return {
    prompt_tokens: o.prompt_tokens,
    completion_tokens: completion,
    total_tokens: typeof o.total_tokens === 'number' ? o.total_tokens : o.prompt_tokens + completion,
  };
}

function boundary(s: string): number {
  const a = s.lastIndexOf('\n\n');
  const b = s.lastIndexOf('\r\n\r\n');
  if (a < 0 && b < 0) return -1;
  return a >= b + 2 ? a + 2 : b + 4;
}

function countData(s: string): number {
  let n = 0;
  let i = s.indexOf('data:');
  while (i >= 0) {
    n++;
    i = s.indexOf('data:', i + 5);
  }
  return n;
}

type EventDoc = { usage?: unknown; choices?: unknown; error?: unknown };

function parseEvent(data: string): EventDoc | null {
  try {
    const v = JSON.parse(data) as unknown;
    return v && typeof v === 'object' ? (v as EventDoc) : null;
  } catch {
    return null;
  }
}

/** OpenAI-compatible SSE, passed through event by event. */
export class SseRelay implements Relay {
  readonly stats: RelayStats = { usage: null, chunks: 0, done: false, upstreamError: false };
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';

  constructor(private readonly keepUsageFrames: boolean) {}

  push(chunk: Buffer): string {
    if (this.stats.upstreamError) return '';
    const s = this.tail + this.decoder.write(chunk);
    const end = boundary(s);
    if (end < 0) {
      this.tail = s;
      return '';
    }
    this.tail = s.slice(end);
    return this.events(s.slice(0, end));
  }

  end(): string {
    const rest = this.tail + this.decoder.end();
    this.tail = '';
    if (!rest.trim() || this.stats.upstreamError) return '';
    return this.events(rest.endsWith('\n\n') ? rest : rest + '\n\n');
  }

  private events(block: string): string {
    if (!block.includes('"usage"') && !block.includes('"error"') && !block.includes('[DONE]')) {
      this.stats.chunks += countData(block);
      return block;
    }
    const out: string[] = [];
    for (const ev of block.split(/\r?\n\r?\n/)) {
      if (!ev) continue;
      const data = ev
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data === '[DONE]') {
        this.stats.done = true;
        out.push(ev);
        continue;
      }
      if (data.includes('"usage"') || data.includes('"error"')) {
        const obj = parseEvent(data);
        if (obj && obj.error && !Array.isArray(obj.choices)) {
          this.stats.upstreamError = true;
          out.push(UPSTREAM_STREAM_ERROR().slice(0, -2));
          break;
        }
        const u = asUsage(obj?.usage);
        if (u) this.stats.usage = u;
        if (u && !this.keepUsageFrames && Array.isArray(obj?.choices) && (obj.choices as unknown[]).length === 0)
          continue;
      }
      if (data) this.stats.chunks += 1;
      out.push(ev);
    }
    return out.length ? out.join('\n\n') + '\n\n' : '';
  }
}

/**
 * An OpenAI-compatible server that answered a streaming request with one JSON completion (some
 * do): the completion is replayed to the client as SSE chunks, so the client still gets a stream.
 */
export class JsonAsSseRelay implements Relay {
  readonly stats: RelayStats = { usage: null, chunks: 0, done: false, upstreamError: false };
  private parts: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly includeUsage: boolean,
    private readonly max: number,
  ) {}

  push(chunk: Buffer): string {
    this.size += chunk.length;
    if (this.size > this.max) this.stats.upstreamError = true;
    else this.parts.push(chunk);
    return '';
  }

  end(): string {
    const doc = this.stats.upstreamError ? null : parseEvent(Buffer.concat(this.parts).toString('utf8'));
    const choice = (Array.isArray(doc?.choices) ? (doc.choices as Record<string, unknown>[]) : [])[0];
    if (!doc || !choice) {
      this.stats.upstreamError = true;
      return UPSTREAM_STREAM_ERROR();
    }
    const d = doc as Record<string, unknown>;
    const base = { id: d.id, object: 'chat.completion.chunk', created: d.created, model: d.model };
    const msg = (choice.message ?? {}) as Record<string, unknown>;
    const delta: Record<string, unknown> = {
      role: 'assistant',
      content: typeof msg.content === 'string' ? msg.content : '',
    };
    if (msg.tool_calls) delta.tool_calls = msg.tool_calls;
    this.stats.usage = asUsage(d.usage);
    this.stats.chunks = 1;
    this.stats.done = true;
    let out = `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    out += `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: choice.finish_reason ?? 'stop' }] })}\n\n`;
    if (this.includeUsage && this.stats.usage)
      out += `data: ${JSON.stringify({ ...base, choices: [], usage: this.stats.usage })}\n\n`;
    return out + 'data: [DONE]\n\n';
  }
}

// ---------------------------------------------------------------- Ollama (native API)

type Msg = { role?: unknown; content?: unknown; [k: string]: unknown };

/** OpenAI chat request → Ollama `/api/chat` request. */
export function toOllamaRequest(body: Record<string, unknown>, upstreamModel: string, stream: boolean) {
  const messages = (Array.isArray(body.messages) ? (body.messages as Msg[]) : []).map((m) => {
    const out: Record<string, unknown> = { role: m.role };
    if (typeof m.content === 'string') out.content = m.content;
    else if (Array.isArray(m.content)) {
      const texts: string[] = [];
      const images: string[] = [];
      for (const part of m.content as { type?: string; text?: string; image_url?: { url?: string } | string }[]) {
        if (part?.type === 'text' && typeof part.text === 'string') texts.push(part.text);
        else if (part?.type === 'image_url') {
          const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
          const m64 = typeof url === 'string' ? /^data:[^;]+;base64,(.*)$/s.exec(url) : null;
          if (m64) images.push(m64[1]!);
        }
      }
      out.content = texts.join('\n');
      if (images.length) out.images = images;
    } else out.content = '';
    if (m.tool_calls) out.tool_calls = m.tool_calls;
    return out;
  });
  const options: Record<string, unknown> = {};
  const map: [string, string][] = [
    ['temperature', 'temperature'],
    ['top_p', 'top_p'],
    ['seed', 'seed'],
    ['stop', 'stop'],
    ['presence_penalty', 'presence_penalty'],
    ['frequency_penalty', 'frequency_penalty'],
  ];
  for (const [from, to] of map) if (body[from] !== undefined && body[from] !== null) options[to] = body[from];
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (typeof maxTokens === 'number') options.num_predict = maxTokens;
  const req: Record<string, unknown> = { model: upstreamModel, messages, stream, options };
  const rf = body.response_format as { type?: string; json_schema?: { schema?: unknown } } | undefined;
  if (rf?.type === 'json_object') req.format = 'json';
  else if (rf?.type === 'json_schema' && rf.json_schema?.schema) req.format = rf.json_schema.schema;
  if (Array.isArray(body.tools)) req.tools = body.tools;
  return req;
}

interface OllamaDone {
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
}

function ollamaUsage(o: OllamaDone): Usage | null {
  if (typeof o.prompt_eval_count !== 'number' && typeof o.eval_count !== 'number') return null;
  const p = o.prompt_eval_count ?? 0;
  const c = o.eval_count ?? 0;
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
}

function finishReason(o: OllamaDone): string {
  return o.done_reason === 'length' ? 'length' : 'stop';
}

/** Ollama non-streaming answer → OpenAI `chat.completion`. */
export function fromOllamaResponse(o: Record<string, unknown>, model: string, id: string, created: number) {
  const msg = (o.message ?? {}) as { content?: unknown; tool_calls?: unknown };
  const usage = ollamaUsage(o as OllamaDone);
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: typeof msg.content === 'string' ? msg.content : '',
          ...(msg.tool_calls ? { tool_calls: msg.tool_calls } : {}),
        },
        finish_reason: finishReason(o as OllamaDone),
        logprobs: null,
      },
    ],
    usage: usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  };
}

/** Ollama NDJSON stream → OpenAI SSE chunks. */
export class OllamaRelay implements Relay {
  readonly stats: RelayStats = { usage: null, chunks: 0, done: false, upstreamError: false };
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';
  private first = true;

  constructor(
    private readonly model: string,
    private readonly id: string,
    private readonly created: number,
    private readonly includeUsage: boolean,
  ) {}

  private chunk(delta: unknown, finish: string | null): string {
    return `data: ${JSON.stringify({
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    })}\n\n`;
  }

  private line(l: string): string {
    if (!l.trim() || this.stats.done || this.stats.upstreamError) return '';
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(l) as Record<string, unknown>;
    } catch {
      this.stats.upstreamError = true;
      return UPSTREAM_STREAM_ERROR();
    }
    if (o.error !== undefined) {
      this.stats.upstreamError = true;
      return UPSTREAM_STREAM_ERROR();
    }
    const msg = (o.message ?? {}) as { content?: unknown; tool_calls?: unknown };
    let out = '';
    const content = typeof msg.content === 'string' ? msg.content : '';
    if (content || msg.tool_calls || this.first) {
      const delta: Record<string, unknown> = {};
      if (this.first) delta.role = 'assistant';
      delta.content = content;
      if (msg.tool_calls) delta.tool_calls = msg.tool_calls;
      this.first = false;
      out += this.chunk(delta, null);
      if (content) this.stats.chunks += 1;
    }
    if (o.done === true) {
      this.stats.done = true;
      this.stats.usage = ollamaUsage(o as OllamaDone);
      out += this.chunk({}, finishReason(o as OllamaDone));
      if (this.includeUsage && this.stats.usage)
        out += `data: ${JSON.stringify({ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [], usage: this.stats.usage })}\n\n`;
      out += 'data: [DONE]\n\n';
    }
    return out;
  }

  push(chunk: Buffer): string {
    const s = this.tail + this.decoder.write(chunk);
    const nl = s.lastIndexOf('\n');
    if (nl < 0) {
      this.tail = s;
      return '';
    }
    this.tail = s.slice(nl + 1);
    let out = '';
    for (const l of s.slice(0, nl).split('\n')) out += this.line(l);
    return out;
  }

  end(): string {
    const rest = this.tail + this.decoder.end();
    this.tail = '';
    return this.line(rest);
  }
}
