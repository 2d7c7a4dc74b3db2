import client, { type Registry } from 'prom-client';

export interface AuditMetrics {
  written: client.Counter<'sink'>;
  errors: client.Counter<'sink'>;
  dropped: client.Counter<'sink'>;
  pending: client.Gauge<'sink'>;
}

const NAMES = {
  written: 'hridaai_audit_entries_written_total',
  errors: 'hridaai_audit_sink_errors_total',
  dropped: 'hridaai_audit_entries_dropped_total',
  pending: 'hridaai_audit_entries_pending',
};

/**
 * Audit metrics (label `sink`: file, stdout, database) on the app's registry — the one
 * `/api/v1/metrics` exposes — or on prom-client's default registry when none is given.
 */
export function createAuditMetrics(registry: Registry = client.register): AuditMetrics {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const registers = [registry];
  return {
    written: get(
      NAMES.written,
      () =>
        new client.Counter({
          name: NAMES.written,
          help: 'Audit entries written, by sink',
          labelNames: ['sink'],
          registers,
        }),
    ),
    errors: get(
      NAMES.errors,
      () =>
        new client.Counter({
          name: NAMES.errors,
          help: 'Failed audit sink writes (the entries are kept and retried)',
          labelNames: ['sink'],
          registers,
        }),
    ),
    dropped: get(
      NAMES.dropped,
      () =>
        new client.Counter({
          name: NAMES.dropped,
          help: 'Audit entries dropped because a failing sink fell too far behind (each drop is also logged)',
          labelNames: ['sink'],
          registers,
        }),
    ),
    pending: get(
      NAMES.pending,
      () =>
        new client.Gauge({
          name: NAMES.pending,
          help: 'Audit entries waiting to be written, by sink',
          labelNames: ['sink'],
          registers,
        }),
    ),
  };
}
