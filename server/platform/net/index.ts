/**
 * Outbound requests — the one way HridaAI reaches a URL that a person typed.
 *
 * ## safe-fetch (user- or admin-typed URLs: web loader, image fetching, user direct connections,
 *    tool servers, OIDC discovery, …)
 *
 * ```ts
 * import { createSafeFetch, UrlBlockedError } from '../../platform/net/index.js';
 * const sf = createSafeFetch(ctx.config, { purpose: 'web_loader' });
 * try {
 *   const res = await sf.fetch('https://example.org/page', { maxBytes: 5 << 20 });
 *   const html = await res.text();          // res.status, res.headers, res.url (final URL)
 * } catch (e) {
 *   if (e instanceof UrlBlockedError) …     // e.rule ('private_address', 'filter_list', …), e.message
 * }
 * await sf.close();                          // or keep one per purpose for the process lifetime
 * ```
 *
 * What every request goes through (see docs/security.md, "Outbound requests (SSRF)"):
 * - http/https only, no credentials in the URL;
 * - the host name is resolved once and **every** address is checked; the socket is opened to exactly
 *   the address that was checked (there is no second lookup, so DNS rebinding cannot swap it), and
 *   IP literals go through the same checks (every IPv4 spelling, IPv4-mapped/-compatible, NAT64,
 *   6to4, Teredo, zone ids);
 * - loopback, RFC 1918, link-local, CGNAT, ULA, reserved … are refused unless
 *   ENABLE_RAG_LOCAL_WEB_FETCH=true; multicast, broadcast, unspecified and cloud metadata endpoints are
 *   refused always; WEB_FETCH_FILTER_LIST is matched against the name and every resolved address;
 * - OFFLINE_MODE=true refuses every public address;
 * - redirects are followed only when AIOHTTP_CLIENT_ALLOW_REDIRECTS=true, every hop re-checked,
 *   at most `maxRedirects` hops; otherwise a 3xx is refused (`redirect: 'manual'` returns it);
 * - response size (compressed and decompressed), header time and total time are capped;
 * - HTTP(S)_PROXY / NO_PROXY are ignored (the client never uses the global or env-proxy dispatcher);
 * - certificate verification follows the setting of the purpose (see `outboundTls`).
 *
 * Options: `purpose` picks the TLS setting; `resolver` replaces DNS (tests); `allowPrivate`
 * lets an admin-level caller reach private addresses without ENABLE_RAG_LOCAL_WEB_FETCH (metadata
 * endpoints stay refused); `useFilterList: false` skips WEB_FETCH_FILTER_LIST (admin-configured URLs);
 * `connector` replaces the socket layer (tests only; it receives the already-checked address).
 * `sf.check(url)` runs the URL and address checks without fetching (for the Playwright loader).
 *
 * ## Outbound TLS for admin-configured model connections
 *
 * ```ts
 * import { createOutboundAgent, outboundTls } from '../../platform/net/index.js';
 * const agent = createOutboundAgent(ctx.config, 'model');   // undici Agent; pass as `dispatcher`
 * await undici.request(url, { dispatcher: agent, … });        // or fetch(url, { dispatcher: agent })
 * outboundTls(ctx.config, 'tool_server')  // → { rejectUnauthorized: boolean }
 * ```
 * Purposes and the setting that controls certificate verification: `model` and `embeddings` →
 * AIOHTTP_CLIENT_SESSION_SSL; `tool_server` → AIOHTTP_CLIENT_SESSION_TOOL_SERVER_SSL; `web_loader`
 * and `image` → ENABLE_WEB_LOADER_SSL_VERIFICATION; `general` (OIDC discovery, web search, …) →
 * REQUESTS_VERIFY. The outbound agent reaches private addresses (a local Ollama is normal) but never
 * cloud metadata endpoints, never uses proxy variables, and under OFFLINE_MODE refuses public addresses.
 */
export {
  createSafeFetch,
  type SafeFetch,
  type SafeFetchOptions,
  type SafeResponse,
  type FetchInit,
} from './safe-fetch.js';
export { createOutboundAgent, outboundTls, type OutboundPurpose } from './outbound.js';
export { UrlBlockedError, type BlockRule } from './errors.js';
export { type Resolver, systemResolver } from './policy.js';
export { classifyAddress, isPublicAddress, parseAddress } from './address.js';
export { parseFilterList, type FilterList } from './filter.js';
