import { createContext, useContext } from 'react';
import type { Me, MyPermissions, PublicConfig } from '../lib/types';

export interface SessionState {
  config: PublicConfig;
  me: Me;
  /** Feature and workspace permissions; null when the server does not report them. */
  permissions: MyPermissions | null;
  /** Reloads the signed-in account (after a profile change). */
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

export const SessionContext = createContext<SessionState | null>(null);

export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside of the signed-in app');
  return s;
}

/** Whether the signed-in account has a feature permission (`features.api_keys`, `workspace.prompts`…). */
export function hasPermission(s: SessionState, name: string): boolean {
  if (s.me.role === 'admin') return true;
  const [section, key] = name.split('.') as [string, string];
  return s.permissions?.permissions[section]?.[key] === true;
}
