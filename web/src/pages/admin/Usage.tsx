import { useCallback, useEffect, useId, useState } from 'react';
import { get, messageOf } from '../../lib/api';
import { Alert, PageTitle, Spinner } from '../../components/ui';

interface Totals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  errors: number;
  aborted: number;
  estimated: number;
}

interface Report {
  from: number;
  to: number;
  group_by: string;
  items: (Totals & { group: string | null })[];
  totals: Totals;
}

const DAY = 86_400_000;
const n = (v: number) => v.toLocaleString();

export function UsageSection() {
  const [groupBy, setGroupBy] = useState('model');
  const [days, setDays] = useState('30');
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState('');
  const groupId = useId();
  const daysId = useId();

  const load = useCallback(async () => {
    const to = Date.now();
    const p = new URLSearchParams({ group_by: groupBy, from: String(to - Number(days) * DAY), to: String(to) });
    try {
      setError('');
      setReport(await get<Report>(`/api/v1/usage?${p.toString()}`));
    } catch (e) {
      setError(messageOf(e));
    }
  }, [groupBy, days]);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <>
      <PageTitle>Usage</PageTitle>
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor={groupId}>Group by</label>
          <select id={groupId} value={groupBy} onChange={(e) => setGroupBy(e.target.value)}>
            <option value="model">Model</option>
            <option value="base_model">Base model</option>
            <option value="user">User</option>
            <option value="key">API key</option>
            <option value="connection">Connection</option>
            <option value="day">Day</option>
            <option value="status">Status</option>
            <option value="route">Route (chat, embeddings, passthrough)</option>
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={daysId}>Period</label>
          <select id={daysId} value={days} onChange={(e) => setDays(e.target.value)}>
            <option value="1">Last 24 hours</option>
            <option value="7">Last 7 days</option>
            <option value="30">Last 30 days</option>
            <option value="90">Last 90 days</option>
          </select>
        </div>
      </div>
      <Alert>{error}</Alert>
      {report === null ? (
        error ? null : (
          <Spinner label="Loading usage" />
        )
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">{groupBy.replace('_', ' ')}</th>
                <th scope="col">Requests</th>
                <th scope="col">Prompt tokens</th>
                <th scope="col">Completion tokens</th>
                <th scope="col">Total tokens</th>
                <th scope="col">Errors</th>
                <th scope="col">Stopped</th>
              </tr>
            </thead>
            <tbody>
              {report.items.map((r) => (
                <tr key={r.group ?? '(none)'}>
                  <th scope="row" className="mono small">
                    {r.group ?? '(none)'}
                  </th>
                  <td>{n(r.requests)}</td>
                  <td>{n(r.prompt_tokens)}</td>
                  <td>{n(r.completion_tokens)}</td>
                  <td>{n(r.total_tokens)}</td>
                  <td>{n(r.errors)}</td>
                  <td>{n(r.aborted)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">Total</th>
                <td>{n(report.totals.requests)}</td>
                <td>{n(report.totals.prompt_tokens)}</td>
                <td>{n(report.totals.completion_tokens)}</td>
                <td>{n(report.totals.total_tokens)}</td>
                <td>{n(report.totals.errors)}</td>
                <td>{n(report.totals.aborted)}</td>
              </tr>
            </tfoot>
          </table>
        </div>
      )}
      {report && report.totals.estimated > 0 ? (
        <p className="muted small">{n(report.totals.estimated)} request(s) counted with estimated tokens.</p>
      ) : null}
    </>
  );
}
