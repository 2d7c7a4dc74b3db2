import type { Flag, Millis } from '../../platform/db/types.js';

/** Tables of the account-security area (migration 0006_account_security). */
export interface UserSecurityTable {
  user_id: string;
  /** Sealed base32 TOTP secret (confirmed enrolment). */
  totp_secret_enc: string | null;
  totp_enabled_at: Millis | null;
  /** Sealed secret of an enrolment awaiting its first code. */
  totp_pending_enc: string | null;
  totp_pending_at: Millis | null;
  /** Highest accepted TOTP time step (replay protection). */
  totp_last_step: number;
  must_change_password: Flag;
  password_reset_by: string | null;
  password_reset_at: Millis | null;
  updated_at: Millis;
}

export interface RecoveryCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  kid: string;
  created_at: Millis;
  used_at: Millis | null;
}

export interface TwoFactorChallengesTable {
  id: string;
  user_id: string;
  kind: string;
  created_at: Millis;
  expires_at: Millis;
  attempts: number;
  consumed_at: Millis | null;
  ip: string | null;
}

export interface LoginAttemptsTable {
  id: string;
  kind: 'account' | 'ip';
  label: string;
  user_id: string | null;
  failures: number;
  lockouts: number;
  refused: number;
  last_failure_at: Millis;
  next_at: Millis;
  locked_until: Millis;
  expires_at: Millis;
  version: number;
  updated_at: Millis;
}

declare module '../../platform/db/types.js' {
  interface Database {
    user_security: UserSecurityTable;
    recovery_codes: RecoveryCodesTable;
    two_factor_challenges: TwoFactorChallengesTable;
    login_attempts: LoginAttemptsTable;
  }
}
