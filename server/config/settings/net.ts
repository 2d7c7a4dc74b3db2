import { parseFilterList } from '../../platform/net/filter.js';
import { bool, oneOf, text, type SettingDef } from '../types.js';

const AREA = 'Outbound requests';

/** Outbound requests: SSRF rules of safe-fetch, outbound TLS, offline mode, the web loader. */
export const netSettings = {
  ENABLE_RAG_LOCAL_WEB_FETCH: bool(false, {
    area: AREA,
    description:
      '`true` lets URLs that people type (web loader, images, direct connections, tool servers) reach loopback, private (RFC 1918), link-local, CGNAT, ULA and reserved addresses. Cloud metadata endpoints, multicast, broadcast and unspecified addresses stay blocked.',
  }),
  WEB_FETCH_FILTER_LIST: text('', {
    area: AREA,
    allowed: 'comma list of host names, suffixes, IPs and CIDRs; `!` blocks (e.g. `!internal.example.com,!10.0.0.0/8`)',
    validate: (v) => {
      try {
        parseFilterList(v);
        return undefined;
      } catch (e) {
        return String(e);
      }
    },
    description:
      '`!entry` blocks; plain entries turn the list into an allowlist (only matching hosts may be fetched). Name entries match the name and its subdomains; IP and CIDR entries match the literal host and every address the name resolves to. Cloud metadata endpoints (169.254.169.254, fd00:ec2::254, metadata.google.internal, metadata.azure.com, 100.100.100.200 …) are blocked whatever this says. An allow entry never unblocks a private address (that takes ENABLE_RAG_LOCAL_WEB_FETCH).',
  }),
  AIOHTTP_CLIENT_ALLOW_REDIRECTS: bool(false, {
    area: AREA,
    description:
      '`false`: outbound requests to typed URLs do not follow 3xx redirects (the web loader answers `url_blocked`). `true`: redirects are followed, at most 5 hops, and every hop is checked again by every SSRF rule.',
  }),
  ENABLE_WEB_LOADER_SSL_VERIFICATION: bool(true, {
    area: AREA,
    description: 'Verify TLS certificates when the web loader (and image fetching) reaches a URL.',
  }),
  REQUESTS_VERIFY: bool(true, {
    area: AREA,
    description: 'Verify TLS certificates of other outbound calls (web search, OIDC discovery, …).',
  }),
  AIOHTTP_CLIENT_SESSION_SSL: bool(true, {
    area: AREA,
    description: 'Verify TLS certificates of model and embedding connections.',
  }),
  AIOHTTP_CLIENT_SESSION_TOOL_SERVER_SSL: bool(true, {
    area: AREA,
    description: 'Verify TLS certificates of tool servers.',
  }),
  OFFLINE_MODE: bool(false, {
    area: AREA,
    description:
      '`true` for air-gapped deployments: every outbound request to a public address is refused (private addresses stay reachable where the rules above allow them); no update checks or downloads.',
  }),
  WEB_LOADER_ENGINE: oneOf(['safe_web', 'playwright'] as const, 'safe_web', {
    area: AREA,
    description:
      '`safe_web` fetches pages with safe-fetch. `playwright` renders them in headless Chromium (WEB_LOADER_CHROMIUM_PATH); every request the page makes, redirects included, is intercepted and checked by the same rules and served through safe-fetch.',
  }),
  WEB_LOADER_CHROMIUM_PATH: text('/usr/bin/chromium', {
    area: AREA,
    allowed: 'path of a Chromium executable',
    description: 'Chromium used by WEB_LOADER_ENGINE=playwright.',
  }),
} satisfies Record<string, SettingDef<unknown>>;
