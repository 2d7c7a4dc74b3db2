import type { Millis } from '../../platform/db/types.js';

/** Tables of the single sign-on area (migration 0007_sso). */
export interface OauthStatesTable {
  id: string;
  provider: string;
  state: string;
  nonce: string | null;
  code_verifier: string;
  redirect_uri: string;
  created_at: Millis;
  expires_at: Millis;
}

export interface SsoSessionsTable {
  session_id: string;
  user_id: string;
  provider: string;
  subject: string;
  idp_sid: string | null;
  created_at: Millis;
}

export interface OidcLogoutJtisTable {
  provider: string;
  jti: string;
  expires_at: Millis;
}

export interface ScimUsersTable {
  user_id: string;
  user_name: string;
  user_name_key: string;
  external_id: string | null;
  given_name: string | null;
  family_name: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface ScimGroupsTable {
  group_id: string;
  external_id: string | null;
  created_at: Millis;
}

declare module '../../platform/db/types.js' {
  interface Database {
    oauth_states: OauthStatesTable;
    sso_sessions: SsoSessionsTable;
    oidc_logout_jtis: OidcLogoutJtisTable;
    scim_users: ScimUsersTable;
    scim_groups: ScimGroupsTable;
  }
}
