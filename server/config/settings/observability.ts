import { bool, oneOf, text, type SettingDef } from '../types.js';

const area = 'Observability';

export const observabilitySettings = {
  ENABLE_OTEL: bool(false, {
    area,
    description:
      'Export a trace span for every HTTP request (method, route, status, duration, client IP; never bodies or credentials) to OTEL_EXPORTER_OTLP_ENDPOINT. Works on its own: no other setting is needed.',
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: text('http://localhost:4317', {
    area,
    allowed: 'an http(s) URL of an OTLP collector',
    validate: (v) => (/^https?:\/\/[^\s/]+/i.test(v) ? undefined : 'must be an http:// or https:// URL'),
    description:
      'Where spans are sent. For `grpc` the collector address (port 4317 by convention); for the HTTP protocols the base URL (port 4318), to which `/v1/traces` is appended unless the URL already has a path. This is an admin-configured destination: it is not subject to the SSRF filters.',
  }),
  OTEL_EXPORTER_OTLP_PROTOCOL: oneOf(['grpc', 'http/protobuf', 'http/json'] as const, 'grpc', {
    area,
    description: 'OTLP transport.',
  }),
  OTEL_SERVICE_NAME: text('hrida-ai', {
    area,
    allowed: 'text',
    description: '`service.name` of the exported spans.',
  }),
  ENABLE_METRICS: bool(true, {
    area,
    description:
      'Serve Prometheus metrics at `GET /api/v1/metrics` (admins, or an admin API key): request counts and latency by route template, audit sink failures, process metrics.',
  }),
} satisfies Record<string, SettingDef<unknown>>;
