import { useEffect, useId, useMemo, useState } from 'react';
import { get, messageOf } from '../../lib/api';
import { Alert, PageTitle, Spinner } from '../../components/ui';

interface Setting {
  name: string;
  area: string;
  value: unknown;
  default: string | null;
  source: 'env' | '.env' | 'default' | 'entry-default';
  secret: boolean;
  allowed: string;
  description: string;
}

const SOURCE_LABEL: Record<Setting['source'], string> = {
  env: 'environment',
  '.env': '.env file',
  default: 'default',
  'entry-default': 'start command default',
};

function show(v: unknown): string {
  if (v === null || v === undefined) return '(unset)';
  if (Array.isArray(v)) return v.length ? v.map(show).join(', ') : '(empty)';
  if (typeof v === 'string') return v === '' ? '(empty)' : v;
  return String(v);
}

/** Every setting with its effective value and where it comes from. Read-only: settings come from the environment. */
export function SettingsSection() {
  const [items, setItems] = useState<Setting[] | null>(null);
  const [error, setError] = useState('');
  const [filter, setFilter] = useState('');
  const filterId = useId();

  useEffect(() => {
    get<{ items: Setting[] }>('/api/v1/admin/settings')
      .then((r) => setItems(r.items))
      .catch((e: unknown) => setError(messageOf(e)));
  }, []);

  const groups = useMemo(() => {
    const q = filter.trim().toLowerCase();
    const out = new Map<string, Setting[]>();
    for (const s of items ?? []) {
      const hay = `${s.name} ${s.area} ${s.description} ${s.secret ? '' : show(s.value)}`.toLowerCase();
      if (q && !hay.includes(q)) continue;
      out.set(s.area, [...(out.get(s.area) ?? []), s]);
    }
    return [...out.entries()];
  }, [items, filter]);

  return (
    <>
      <PageTitle>Configuration</PageTitle>
      <p>
        Every setting and where its value comes from. Settings are read from the environment (or the <code>.env</code>{' '}
        file) when HridaAI starts, so this view is read-only: change the environment and restart to change a value.
        Secret values are never shown.
      </p>
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor={filterId}>Filter settings</label>
          <input id={filterId} type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </div>
      </div>
      <Alert>{error}</Alert>
      {items === null ? (
        error ? null : (
          <Spinner label="Loading settings" />
        )
      ) : groups.length === 0 ? (
        <p>No setting matches.</p>
      ) : (
        groups.map(([area, list]) => (
          <section key={area} aria-label={area} className="settings-area">
            <h2>{area}</h2>
            <div className="table-wrap">
              <table className="table compact">
                <thead>
                  <tr>
                    <th scope="col">Setting</th>
                    <th scope="col">Value</th>
                    <th scope="col">Source</th>
                    <th scope="col">Default</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((s) => (
                    <tr key={s.name} data-setting={s.name}>
                      <th scope="row">
                        <div className="mono small">{s.name}</div>
                        <div className="muted small">{s.description}</div>
                        <div className="muted small">Allowed: {s.allowed}</div>
                      </th>
                      <td className="mono small" data-col="value">
                        {show(s.value)}
                        {s.secret ? <span className="badge"> secret</span> : null}
                      </td>
                      <td data-col="source">
                        <span className={s.source === 'default' ? 'badge' : 'badge badge-ok'}>
                          {SOURCE_LABEL[s.source]}
                        </span>
                      </td>
                      <td className="mono small">{show(s.default)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        ))
      )}
    </>
  );
}
