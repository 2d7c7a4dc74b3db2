import { Agent } from 'undici';
import type { Config } from '../../config/index.js';
import { checkedConnector, verifiedBaseConnector, type Connector, type ConnectInfo } from './connector.js';
import { parseFilterList } from './filter.js';
import { defaultPolicyOptions, UrlPolicy, type Resolver } from './policy.js';

/** Which setting decides certificate verification for a kind of outbound call. */
export type OutboundPurpose = 'model' | 'embeddings' | 'tool_server' | 'web_loader' | 'image' | 'general';

export type NetConfig = Pick<
  Config,
  | 'ENABLE_RAG_LOCAL_WEB_FETCH'
  | 'WEB_FETCH_FILTER_LIST'
  | 'AIOHTTP_CLIENT_ALLOW_REDIRECTS'
  | 'ENABLE_WEB_LOADER_SSL_VERIFICATION'
  | 'REQUESTS_VERIFY'
  | 'AIOHTTP_CLIENT_SESSION_SSL'
  | 'AIOHTTP_CLIENT_SESSION_TOOL_SERVER_SSL'
  | 'OFFLINE_MODE'
>;

export function outboundTls(config: NetConfig, purpose: OutboundPurpose): { rejectUnauthorized: boolean } {
  switch (purpose) {
    case 'model':
    case 'embeddings':
      return { rejectUnauthorized: config.AIOHTTP_CLIENT_SESSION_SSL };
    case 'tool_server':
      return { rejectUnauthorized: config.AIOHTTP_CLIENT_SESSION_TOOL_SERVER_SSL };
    case 'web_loader':
    case 'image':
      return { rejectUnauthorized: config.ENABLE_WEB_LOADER_SSL_VERIFICATION };
    default:
      return { rejectUnauthorized: config.REQUESTS_VERIFY };
  }
}

const filterCache = new Map<string, ReturnType<typeof parseFilterList>>();
export function filterOf(config: NetConfig) {
  const raw = config.WEB_FETCH_FILTER_LIST ?? '';
  let f = filterCache.get(raw);
  if (!f) {
    f = parseFilterList(raw);
    filterCache.set(raw, f);
  }
  return f;
}

export interface OutboundAgentOptions {
  resolver?: Resolver;
  connector?: Connector;
  onConnect?: (i: ConnectInfo) => void;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
}

/**
 * An undici Agent for admin-configured endpoints (model connections, embeddings, tool servers an
 * admin registered). Private addresses are reachable (a local Ollama is normal); cloud metadata
 * endpoints, multicast/broadcast/unspecified addresses are not; OFFLINE_MODE refuses public
 * addresses; proxy variables are never used; certificate verification follows `purpose`.
 * Streaming bodies pass through untouched (no size cap: the caller owns the stream).
 */
export function createOutboundAgent(
  config: NetConfig,
  purpose: OutboundPurpose,
  opts: OutboundAgentOptions = {},
): Agent {
  const policy = new UrlPolicy(
    defaultPolicyOptions({
      allowPrivate: true,
      offline: config.OFFLINE_MODE,
      resolver: opts.resolver,
    }),
  );
  const base =
    opts.connector ??
    verifiedBaseConnector({
      rejectUnauthorized: outboundTls(config, purpose).rejectUnauthorized,
      timeoutMs: opts.connectTimeoutMs ?? 10_000,
    });
  return new Agent({
    connect: checkedConnector(policy, base, opts.onConnect),
    headersTimeout: opts.headersTimeoutMs ?? 300_000,
    bodyTimeout: opts.bodyTimeoutMs ?? 300_000,
  });
}
