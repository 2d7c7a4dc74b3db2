import { useEffect, type ReactNode } from 'react';
import { Link, navigate } from '../../lib/router';
import { hasPermission, useSession } from '../../components/session';
import { PageTitle } from '../../components/ui';
import { KnowledgeSection } from './Knowledge';
import { PresetsSection } from './Presets';
import { PromptsSection } from './Prompts';

interface Tab {
  key: string;
  label: string;
  render: () => ReactNode;
}

/** Presets, knowledge bases and prompts: for users with the matching workspace permission. */
export function workspaceTabs(session: ReturnType<typeof useSession>): Tab[] {
  return [
    ...(hasPermission(session, 'workspace.models')
      ? [{ key: 'models', label: 'Models', render: () => <PresetsSection /> }]
      : []),
    ...(hasPermission(session, 'workspace.knowledge')
      ? [{ key: 'knowledge', label: 'Knowledge', render: () => <KnowledgeSection /> }]
      : []),
    ...(hasPermission(session, 'workspace.prompts')
      ? [{ key: 'prompts', label: 'Prompts', render: () => <PromptsSection /> }]
      : []),
  ];
}

export function WorkspacePage({ path }: { path: string }) {
  const session = useSession();
  const tabs = workspaceTabs(session);
  const key = path.split('/')[2] ?? '';
  const tab = tabs.find((t) => t.key === key);
  useEffect(() => {
    if (!tab && tabs[0]) navigate(`/workspace/${tabs[0].key}`, { replace: true });
  }, [tab, tabs]);

  if (tabs.length === 0)
    return (
      <div className="page">
        <PageTitle>Workspace</PageTitle>
        <p>Your account has no workspace permission. An administrator can give you one through a group.</p>
      </div>
    );
  return (
    <div className="page with-subnav">
      <nav aria-label="Workspace" className="subnav">
        <ul>
          {tabs.map((t) => (
            <li key={t.key}>
              <Link to={`/workspace/${t.key}`} aria-current={t.key === tab?.key ? 'page' : undefined}>
                {t.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <section className="subpage">{tab ? tab.render() : null}</section>
    </div>
  );
}
