import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import type { Db } from './platform/db/index.js';
import type { Keyring } from './platform/security/keyring.js';
import type { RedisHandle } from './platform/redis/index.js';
import type { SessionService } from './modules/auth/sessions.js';
import type { Session, User } from './platform/db/types.js';
import type { AuditService } from './platform/audit/index.js';

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
  /** bcrypt hash compared when an account does not exist (equal timing). */
  dummyHash: string;
}

/** Who is making the request, resolved once in onRequest. */
export interface AuthContext {
  kind: 'session' | 'api-key';
  user: User;
  session: Session | null;
  /** The admin acting during impersonation; otherwise the user. */
  actorId: string;
  /** The credential came from the cookie (CSRF applies). */
  viaCookie: boolean;
  keyId?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null;
  }
}
