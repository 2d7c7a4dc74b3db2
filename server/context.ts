import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import type { Db } from './platform/db/index.js';
import type { Keyring } from './platform/security/keyring.js';
import type { RedisHandle } from './platform/redis/index.js';
import type { SessionService } from './modules/auth/sessions.js';
import type { Session, User } from './platform/db/types.js';
import type { AuditService } from './platform/audit/index.js';
import type { Observability } from './platform/observability/index.js';
import type { AccountSecurity } from './modules/account-security/service.js';

/** What every module gets: configuration, storage and the shared services. */
export interface AppContext {
  config: Config;
  db: Db;
  dbKind: 'sqlite' | 'postgresql';
  keyring: Keyring;
  redis: RedisHandle | null;
  sessions: SessionService;
  log: Logger;
  audit: AuditService;
  obs: Observability;
  /** 2FA, the login limiter, forced password change, the no-auth policy. */
  accountSecurity: AccountSecurity;
  /** bcrypt hash compared when an account does not exist (equal timing). */
  dummyHash: string;
}

/** Who is making the request, resolved once in onRequest. */
export interface AuthContext {
  /** `anonymous`: no credential, admitted by POLICY_NO_AUTH_DEFAULT (view_only / allow_all). */
  kind: 'session' | 'api-key' | 'anonymous';
  user: User;
  session: Session | null;
  /** The admin acting during impersonation; otherwise the user. */
  actorId: string;
  /** The credential came from the cookie (CSRF applies). */
  viaCookie: boolean;
  keyId?: string;
  /** Set for `anonymous`: the no-auth policy that admitted the request. */
  anonymous?: 'view_only' | 'allow_all';
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null;
  }
}
