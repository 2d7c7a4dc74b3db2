import { createRequire } from 'node:module';
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import type * as OtelCore from '@opentelemetry/core';
import type * as OtlpGrpc from '@opentelemetry/exporter-trace-otlp-grpc';
import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as OtelResources from '@opentelemetry/resources';
import type * as OtelSdk from '@opentelemetry/sdk-trace';
import type { SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { Config } from '../../config/index.js';
import { redactUrl } from '../log/logger.js';

/**
 * Observability: Prometheus metrics (one registry per app instance) and OpenTelemetry traces.
 * ENABLE_OTEL=true exports one server span per request on its own — no agent, no other setting.
 */
export interface Observability {
  registry: Registry;
  /** Counters other modules increment (audit sink failures, …). */
  counter(name: string, help: string, labelNames?: string[]): Counter<string>;
  tracer: Tracer | null;
  close(): Promise<void>;
}

// The trace SDK and exporters are loaded only when ENABLE_OTEL=true (they are large and idle otherwise).
const require = createRequire(import.meta.url);

function exporterFor(config: Config): SpanExporter {
  const { OTLPTraceExporter: GrpcExporter } = require('@opentelemetry/exporter-trace-otlp-grpc') as typeof OtlpGrpc;
  const { OTLPTraceExporter: HttpExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttp;
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4317';
  if (config.OTEL_EXPORTER_OTLP_PROTOCOL === 'grpc') return new GrpcExporter({ url: endpoint });
  const u = new URL(endpoint);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  if (config.OTEL_EXPORTER_OTLP_PROTOCOL === 'http/json') return new HttpExporter({ url: u.toString() });
  // http/protobuf
  return new (HttpExporter as unknown as new (c: object) => SpanExporter)({
    url: u.toString(),
    contentType: 'application/x-protobuf',
  });
}

export function createObservability(
  config: Config,
  log: Logger,
): Observability & { instrument(app: FastifyInstance): void } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hridaai_' });
  const requests = new Counter({
    name: 'hridaai_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hridaai_http_request_duration_seconds',
    help: 'HTTP request duration by method and route template',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const counters = new Map<string, Counter<string>>();
  const children = new Map<
    string,
    { count: ReturnType<Counter<string>['labels']>; time: ReturnType<Histogram<string>['labels']> }
  >();

  let provider: TracerProvider | null = null;
  let tracer: Tracer | null = null;
  let propagator: OtelCore.W3CTraceContextPropagator | null = null;
  if (config.ENABLE_OTEL) {
    const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof OtelCore;
    const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof OtelResources;
    const { BatchSpanProcessor, TracerProvider } = require('@opentelemetry/sdk-trace') as typeof OtelSdk;
    propagator = new W3CTraceContextPropagator();
    provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.OTEL_SERVICE_NAME ?? 'hrida-ai' }),
      spanProcessors: [new BatchSpanProcessor({ exporter: exporterFor(config), scheduledDelayMillis: 1000 })],
    });
    tracer = provider.getTracer('hrida-ai');
    log.info(
      { endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT, protocol: config.OTEL_EXPORTER_OTLP_PROTOCOL },
      'OpenTelemetry trace export enabled',
    );
  }

  const spans = new WeakMap<FastifyRequest, Span>();
  const instrument = (app: FastifyInstance) => {
    if (tracer && propagator) {
      const t = tracer;
      const prop = propagator;
      app.addHook('onRequest', async (req) => {
        const parent = prop.extract(context.active(), req.headers, {
          get: (h, k) => h[k] as string | string[] | undefined,
          keys: (h) => Object.keys(h),
        });
        const route = req.routeOptions.url ?? 'unknown';
        const span = t.startSpan(
          `${req.method} ${route}`,
          {
            kind: SpanKind.SERVER,
            attributes: {
              'http.request.method': req.method,
              'http.route': route,
              'url.path': redactUrl(req.url).split('?')[0],
              'client.address': req.ip,
              'hridaai.request_id': req.id,
            },
          },
          parent,
        );
        spans.set(req, span);
      });
    }

    app.addHook('onResponse', (req, reply, done) => {
      const route = req.routeOptions.url ?? 'unmatched';
      // Labelled children are cached: prom-client hashes the label object on every call otherwise.
      const k = `${req.method} ${route} ${reply.statusCode}`;
      let c = children.get(k);
      if (!c) {
        if (children.size > 10_000) children.clear();
        c = {
          count: requests.labels(req.method, route, String(reply.statusCode)),
          time: duration.labels(req.method, route),
        };
        children.set(k, c);
      }
      c.count.inc();
      c.time.observe(reply.elapsedTime / 1000);
      const span = spans.get(req);
      if (span) {
        span.setAttribute('http.response.status_code', reply.statusCode);
        if (req.auth) span.setAttribute('hridaai.auth_kind', req.auth.kind);
        if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      }
      done();
    });
  };
  void propagation;
  void trace;

  return {
    instrument,
    registry,
    tracer,
    counter(name, help, labelNames = []) {
      let c = counters.get(name);
      if (!c) {
        c = new Counter({ name, help, labelNames, registers: [registry] });
        counters.set(name, c);
      }
      return c;
    },
    async close() {
      if (provider) await provider.shutdown().catch(() => undefined);
    },
  };
}
