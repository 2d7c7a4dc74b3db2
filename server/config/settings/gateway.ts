import { bool, requiredInt, type SettingDef } from '../types.js';

const AREA = 'Model gateway';

const count = (def: number, max: number, description: string) =>
  requiredInt(def, { min: 0, max }, { area: AREA, description });

/**
 * Connections, models, the OpenAI-compatible gateway and its limits. Limit defaults apply to every
 * user (admins included) unless a limit row for the user or one of their groups says otherwise
 * (`/api/v1/gateway/limits`); `0` means "no limit".
 */
export const gatewaySettings = {
  ENABLE_OPENAI_API_PASSTHROUGH: bool(false, {
    area: AREA,
    description:
      'Keep disabled. `false`: `/api/openai/{path}` answers 403. `true`: it forwards any request to an admin-configured OpenAI connection with the admin key, so any signed-in user can reach any upstream endpoint with the admin credentials. Even then the caller must authenticate, limits and budgets apply, a `model` named in the body must be granted to the caller, and every call is audited.',
  }),
  ENABLE_DIRECT_CONNECTIONS: bool(false, {
    area: AREA,
    description:
      '`true` lets users add their own model connections with their own API keys (`/api/v1/user/connections`); the server calls them through the SSRF-safe client (private addresses refused), keys encrypted at rest and visible only to their owner. `false` (default): the routes answer 403 and any request naming a user connection (`direct/<id>/<model>`) is refused.',
  }),
  BYPASS_MODEL_ACCESS_CONTROL: bool(false, {
    area: AREA,
    description:
      '`true` lets every user (not pending ones) see and use every model regardless of grants. `false` (default): a user sees and uses a model only with a read grant (to them or one of their groups) on every model of the preset chain; admins per BYPASS_ADMIN_ACCESS_CONTROL.',
  }),
  MODEL_DISCOVERY_CACHE_TTL: count(
    300,
    86_400,
    'Seconds a connection’s discovered model list is reused before asking the upstream again (`0`: every listing asks). Admins refresh at once with `POST /api/v1/connections/{id}/refresh` or `GET /api/models?refresh=true`. A connection with an explicit `model_ids` list is never asked.',
  ),
  GATEWAY_UPSTREAM_HEADERS_TIMEOUT: requiredInt(
    60,
    { min: 1, max: 3600 },
    {
      area: AREA,
      description:
        'Seconds to wait for an upstream’s response headers (and, for streams, its first chunk) before answering 504 `upstream_timeout`.',
    },
  ),
  GATEWAY_STREAM_IDLE_TIMEOUT: requiredInt(
    120,
    { min: 1, max: 3600 },
    {
      area: AREA,
      description:
        'Seconds an upstream may stay silent in the middle of a response. A stalled stream ends with a terminal error event; the usage received so far is recorded.',
    },
  ),
  GATEWAY_REQUEST_TIMEOUT: requiredInt(
    900,
    { min: 10, max: 86_400 },
    {
      area: AREA,
      description:
        'Longest a single gateway request may last. Also the lifetime of a concurrency slot, so slots held by an instance that crashed free themselves after this time.',
    },
  ),
  GATEWAY_MAX_BODY_SIZE: requiredInt(
    16 * 1024 * 1024,
    { min: 1024, max: 512 * 1024 * 1024 },
    {
      area: AREA,
      description:
        'Largest request body of the gateway routes (chat completions, embeddings, pass-through) in bytes (larger: 413). Also caps a non-streaming upstream response body.',
    },
  ),
  GATEWAY_DEFAULT_MAX_TOKENS: requiredInt(
    4096,
    { min: 1, max: 10_000_000 },
    {
      area: AREA,
      description:
        'Completion tokens reserved against token limits and budgets when a request does not set `max_tokens`. When a token limit or budget applies, the request is sent upstream with this `max_tokens`, so it cannot spend more than it reserved.',
    },
  ),
  GATEWAY_USER_REQUESTS_PER_MINUTE: count(
    600,
    10_000_000,
    'Default requests per minute per user (rolling window, 1-second buckets) over every gateway route.',
  ),
  GATEWAY_USER_TOKENS_PER_MINUTE: count(
    0,
    1_000_000_000,
    'Default tokens (prompt + completion) per minute per user. Reserved before dispatch, settled after.',
  ),
  GATEWAY_USER_CONCURRENT_REQUESTS: count(
    32,
    1_000_000,
    'Default number of gateway requests (streams included) a user may have in flight at once.',
  ),
  GATEWAY_USER_TOKENS_PER_DAY: count(
    0,
    1_000_000_000_000,
    'Default token budget per user per UTC day. Reserved before dispatch from the prompt and `max_tokens`, settled after.',
  ),
  GATEWAY_USER_TOKENS_PER_MONTH: count(
    0,
    1_000_000_000_000,
    'Default token budget per user per UTC calendar month. Reserved before dispatch, settled after.',
  ),
} satisfies Record<string, SettingDef<unknown>>;
