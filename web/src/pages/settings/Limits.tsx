import { useEffect, useState } from 'react';
import { get, messageOf } from '../../lib/api';
import { Alert, PageTitle, Spinner } from '../../components/ui';

interface MyLimit {
  /** `user`, `key`, or `group:<id>` (a token budget shared by the group's members). */
  applies_to: string;
  kind: 'requests' | 'tokens' | 'concurrency' | 'budget_day' | 'budget_month';
  limit: number;
}

const KIND: Record<MyLimit['kind'], string> = {
  requests: 'Requests per minute',
  tokens: 'Tokens per minute',
  concurrency: 'Requests at the same time',
  budget_day: 'Tokens per day (UTC)',
  budget_month: 'Tokens per month (UTC)',
};

function appliesTo(who: string): string {
  if (who === 'user') return 'Your account';
  if (who === 'key') return 'This API key';
  if (who.startsWith('group:')) return 'Shared by a group you belong to';
  return who;
}

/** The signed-in user's own gateway limits (read-only: administrators set them). */
export function MyLimitsSection() {
  const [items, setItems] = useState<MyLimit[] | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    const ctl = new AbortController();
    get<{ items: MyLimit[] }>('/api/v1/gateway/limits/me', { signal: ctl.signal })
      .then((r) => setItems(r.items))
      .catch((e: unknown) => {
        if (ctl.signal.aborted) return;
        setError(messageOf(e));
        setItems([]);
      });
    return () => ctl.abort();
  }, []);

  return (
    <>
      <PageTitle>Usage limits</PageTitle>
      <p>
        How much you can ask of the models, in chats and with API keys. Administrators set these limits; a request over
        a limit is refused until the minute, day or month has passed. What is not listed here is not limited (some
        models may have limits of their own).
      </p>
      <Alert>{error}</Alert>
      {items === null ? (
        <Spinner label="Loading your limits" />
      ) : items.length === 0 ? (
        error ? null : (
          <p>No limits apply to your account.</p>
        )
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Limit</th>
                <th scope="col">Applies to</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {items.map((l) => (
                <tr key={`${l.applies_to}:${l.kind}`} data-kind={l.kind}>
                  <td>{KIND[l.kind] ?? l.kind}</td>
                  <td>{appliesTo(l.applies_to)}</td>
                  <td data-col="value">{l.limit.toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
