import { useEffect, type ReactNode } from 'react';
import { Link, navigate } from '../../lib/router';
import { hasPermission, useSession } from '../../components/session';
import { ApiKeysSection } from './ApiKeys';
import { DirectConnectionsSection } from './Connections';
import { MyLimitsSection } from './Limits';
import { TwoFactorSection } from './TwoFactor';
import { PrivacySection } from './Privacy';
import { MemoriesSection } from './Memories';
import { PasswordSection } from './Password';
import { ProfileSection } from './Profile';
import { SessionsSection } from './Sessions';

interface Tab {
  key: string;
  label: string;
  render: () => ReactNode;
}

export function SettingsPage({ path }: { path: string }) {
  const session = useSession();
  const { config, me } = session;
  const tabs: Tab[] = [
    { key: 'profile', label: 'Profile', render: () => <ProfileSection /> },
    ...(config.features.enable_password_change_form && config.features.enable_password_auth && !me.impersonated_by
      ? [{ key: 'password', label: 'Password', render: () => <PasswordSection /> }]
      : []),
    ...(!me.impersonated_by ? [{ key: 'two-factor', label: 'Two-factor', render: () => <TwoFactorSection /> }] : []),
    { key: 'sessions', label: 'Sessions', render: () => <SessionsSection /> },
    ...(hasPermission(session, 'features.api_keys')
      ? [{ key: 'api-keys', label: 'API keys', render: () => <ApiKeysSection /> }]
      : []),
    ...(config.features.enable_direct_connections
      ? [{ key: 'connections', label: 'Connections', render: () => <DirectConnectionsSection /> }]
      : []),
    { key: 'limits', label: 'Usage limits', render: () => <MyLimitsSection /> },
    { key: 'memories', label: 'Memories', render: () => <MemoriesSection /> },
    { key: 'data', label: 'Your data', render: () => <PrivacySection /> },
  ];
  const key = path.split('/')[2] ?? '';
  const tab = tabs.find((t) => t.key === key);
  useEffect(() => {
    if (!tab) navigate('/settings/profile', { replace: true });
  }, [tab]);

  return (
    <div className="page with-subnav">
      <nav aria-label="Settings" className="subnav">
        <ul>
          {tabs.map((t) => (
            <li key={t.key}>
              <Link to={`/settings/${t.key}`} aria-current={t.key === tab?.key ? 'page' : undefined}>
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
