import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { get, messageOf } from '../../lib/api';
import { formatTime } from '../../lib/format';
import { Alert, Field, PageTitle, Spinner } from '../../components/ui';

interface AuditEvent {
  seq: number;
  created_at: number;
  action: string;
  result: string;
  actor_id: string | null;
  actor_email: string | null;
  subject_id: string | null;
  resource_type: string | null;
  resource_id: string | null;
  ip: string | null;
  request_id: string | null;
  before: unknown;
  after: unknown;
  details: unknown;
  hash: string;
}

interface Filters {
  from: string;
  to: string;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string;
  result: '' | 'success' | 'failure';
}

const EMPTY: Filters = { from: '', to: '', actor: '', action: '', resource_type: '', resource_id: '', result: '' };

function toQuery(f: Filters): URLSearchParams {
  const p = new URLSearchParams();
  // datetime-local values are local time; the API takes ISO 8601 or milliseconds.
  if (f.from) p.set('from', String(new Date(f.from).getTime()));
  if (f.to) p.set('to', String(new Date(f.to).getTime()));
  for (const k of ['actor', 'action', 'resource_type', 'resource_id', 'result'] as const)
    if (f[k].trim()) p.set(k, f[k].trim());
  return p;
}

const short = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
const shortTime = (ms: number) => short.format(new Date(ms));

/** UUIDs are long: the first block is enough to tell entries apart (the full id is in the title). */
function shortId(id: string): string {
  return /^[0-9a-f]{8}-[0-9a-f-]{27}$/i.test(id) ? `${id.slice(0, 8)}…` : id.length > 40 ? `${id.slice(0, 39)}…` : id;
}

/** JSON of an entry, shown as text (never as markup). */
function Json({ value }: { value: unknown }) {
  if (value === null || value === undefined) return null;
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}

export function AuditSection() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [items, setItems] = useState<AuditEvent[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [open, setOpen] = useState<number | null>(null);

  const load = useCallback(
    async (after: string | null) => {
      setError('');
      const q = toQuery(filters);
      q.set('limit', '50');
      if (after) q.set('cursor', after);
      try {
        const r = await get<{ items: AuditEvent[]; next_cursor: string | null }>(`/api/v1/audit?${q.toString()}`);
        setItems((prev) => (after && prev ? [...prev, ...r.items] : r.items));
        setCursor(r.next_cursor);
      } catch (e) {
        setError(messageOf(e));
        if (!after) setItems([]);
      }
    },
    [filters],
  );

  useEffect(() => {
    setItems(null);
    void load(null);
  }, [load]);

  function apply(e: FormEvent) {
    e.preventDefault();
    setFilters(draft);
  }

  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });
  const exportUrl = `/api/v1/audit/export?${toQuery(filters).toString()}`;

  return (
    <>
      <PageTitle>Audit log</PageTitle>
      <p>Every change and sign-in, newest first. Entries are chained by hash and cannot be edited.</p>
      <form className="filters" onSubmit={apply} aria-label="Filters">
        <Field label="From" name="from" type="datetime-local" value={draft.from} onChange={set('from')} />
        <Field label="To" name="to" type="datetime-local" value={draft.to} onChange={set('to')} />
        <Field label="Actor (user id)" name="actor" value={draft.actor} onChange={set('actor')} />
        <Field
          label="Action"
          name="action"
          placeholder="e.g. auth.* or user.updated"
          value={draft.action}
          onChange={set('action')}
        />
        <Field label="Resource type" name="resource_type" value={draft.resource_type} onChange={set('resource_type')} />
        <Field label="Resource id" name="resource_id" value={draft.resource_id} onChange={set('resource_id')} />
        <div className="field">
          <label htmlFor="audit-result">Result</label>
          <select id="audit-result" value={draft.result} onChange={set('result')}>
            <option value="">Any</option>
            <option value="success">Success</option>
            <option value="failure">Failure</option>
          </select>
        </div>
        <div className="row tight filters-actions">
          <button type="submit" className="btn btn-primary">
            Apply filters
          </button>
          <button
            type="button"
            className="btn"
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
            }}
          >
            Clear
          </button>
          <a className="btn" href={exportUrl} download>
            Export (JSON Lines)
          </a>
        </div>
      </form>
      <Alert>{error}</Alert>
      {items === null ? (
        <Spinner label="Loading the audit log" />
      ) : items.length === 0 ? (
        <p>No entries match.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Resource</th>
                <th scope="col">Result</th>
                <th scope="col">
                  <span className="sr-only">Details</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((ev) => (
                <AuditRow
                  key={ev.seq}
                  ev={ev}
                  open={open === ev.seq}
                  onToggle={() => setOpen(open === ev.seq ? null : ev.seq)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor ? (
        <div className="row">
          <button type="button" className="btn" onClick={() => void load(cursor)}>
            Load older entries
          </button>
        </div>
      ) : null}
    </>
  );
}

function AuditRow({ ev, open, onToggle }: { ev: AuditEvent; open: boolean; onToggle: () => void }) {
  return (
    <>
      <tr>
        <td className="nowrap small" title={formatTime(ev.created_at)}>
          {shortTime(ev.created_at)}
        </td>
        <td className="mono small">{ev.action}</td>
        <td>
          {ev.actor_email ?? ev.actor_id ?? '—'}
          {ev.subject_id && ev.subject_id !== ev.actor_id ? (
            <div className="cell-sub" title={ev.subject_id}>
              as {shortId(ev.subject_id)}
            </div>
          ) : null}
        </td>
        <td className="small" title={ev.resource_id ?? undefined}>
          {ev.resource_type ?? '—'}
          {ev.resource_id ? <div className="cell-sub mono">{shortId(ev.resource_id)}</div> : null}
        </td>
        <td>
          <span className={ev.result === 'success' ? 'badge badge-ok' : 'badge badge-bad'}>{ev.result}</span>
        </td>
        <td className="actions">
          <button type="button" className="btn btn-small" aria-expanded={open} onClick={onToggle}>
            Details<span className="sr-only"> of entry {ev.seq}</span>
          </button>
        </td>
      </tr>
      {open ? (
        <tr className="detail-row">
          <td colSpan={6}>
            <dl className="facts">
              <dt>Entry</dt>
              <dd>#{ev.seq}</dd>
              <dt>Time</dt>
              <dd>{formatTime(ev.created_at)}</dd>
              <dt>Client address</dt>
              <dd>{ev.ip ?? '—'}</dd>
              <dt>Request</dt>
              <dd className="mono small">{ev.request_id ?? '—'}</dd>
              <dt>Hash</dt>
              <dd className="mono small">{ev.hash}</dd>
            </dl>
            {ev.details ? (
              <>
                <h3>Details</h3>
                <Json value={ev.details} />
              </>
            ) : null}
            {ev.before ? (
              <>
                <h3>Before</h3>
                <Json value={ev.before} />
              </>
            ) : null}
            {ev.after ? (
              <>
                <h3>After</h3>
                <Json value={ev.after} />
              </>
            ) : null}
          </td>
        </tr>
      ) : null}
    </>
  );
}
