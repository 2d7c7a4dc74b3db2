import { useEffect, type ReactNode } from 'react';
import { Link, navigate } from '../../lib/router';
import { AuditSection } from './Audit';
import { ConnectionsSection } from './Connections';
import { GroupsSection } from './Groups';
import { LimitsSection } from './Limits';
import { LockoutsSection } from './Lockouts';
import { PermissionsSection } from './Permissions';
import { SettingsSection } from './Settings';
import { UsageSection } from './Usage';
import { UsersSection } from './Users';

interface Tab {
  key: string;
  label: string;
  render: () => ReactNode;
}

const TABS: Tab[] = [
  { key: 'users', label: 'Users', render: () => <UsersSection /> },
  { key: 'groups', label: 'Groups', render: () => <GroupsSection /> },
  { key: 'permissions', label: 'Permissions', render: () => <PermissionsSection /> },
  { key: 'connections', label: 'Connections', render: () => <ConnectionsSection /> },
  { key: 'usage', label: 'Usage', render: () => <UsageSection /> },
  { key: 'limits', label: 'Limits', render: () => <LimitsSection /> },
  { key: 'audit', label: 'Audit log', render: () => <AuditSection /> },
  { key: 'lockouts', label: 'Lockouts', render: () => <LockoutsSection /> },
  { key: 'configuration', label: 'Configuration', render: () => <SettingsSection /> },
];

export function AdminPage({ path }: { path: string }) {
  const key = path.split('/')[2] ?? '';
  const tab = TABS.find((t) => t.key === key);
  useEffect(() => {
    if (!tab) navigate('/admin/users', { replace: true });
  }, [tab]);

  return (
    <div className="page with-subnav">
      <nav aria-label="Administration" className="subnav">
        <ul>
          {TABS.map((t) => (
            <li key={t.key}>
              <Link to={`/admin/${t.key}`} aria-current={t.key === tab?.key ? 'page' : undefined}>
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
