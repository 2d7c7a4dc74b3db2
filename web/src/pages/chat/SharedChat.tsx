import { useEffect, useState } from 'react';
import { ApiError, get, messageOf } from '../../lib/api';
import { formatTime } from '../../lib/format';
import { textOf, type SharedChat } from '../../lib/types';
import { Alert, PageTitle, Spinner } from '../../components/ui';
import { MessageView } from './MessageView';

/** A chat someone shared: a read-only snapshot, visible to signed-in users who have the link. */
export function SharedChatPage({ shareId }: { shareId: string }) {
  const [chat, setChat] = useState<SharedChat | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    setChat(null);
    setError('');
    get<SharedChat>(`/api/v1/chats/shared/${encodeURIComponent(shareId)}`)
      .then(setChat)
      .catch((e: unknown) =>
        setError(
          e instanceof ApiError && e.status === 404 ? 'This link does not exist or is no longer shared.' : messageOf(e),
        ),
      );
  }, [shareId]);

  if (error)
    return (
      <div className="page">
        <PageTitle>Shared chat</PageTitle>
        <Alert>{error}</Alert>
      </div>
    );
  if (!chat)
    return (
      <div className="page">
        <Spinner label="Loading the shared chat" />
      </div>
    );
  return (
    <div className="page shared-chat">
      <PageTitle>{chat.title}</PageTitle>
      <p className="muted small">Read-only copy shared by its owner · updated {formatTime(chat.updated_at)}</p>
      <div className="stack">
        {chat.messages
          .filter((m) => m.role === 'user' || m.role === 'assistant')
          .map((m, i) => (
            <MessageView
              key={i}
              message={{
                id: String(i),
                role: m.role as 'user' | 'assistant',
                content: textOf(m.content),
                model: m.model ?? undefined,
              }}
            />
          ))}
      </div>
    </div>
  );
}
