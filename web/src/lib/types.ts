/** Shapes returned by the HridaAI API (see the routes.ts file of each server module). */

export type Role = 'admin' | 'user' | 'pending';

export interface PublicConfig {
  name: string;
  version: string;
  onboarding: boolean;
  features: {
    enable_login_form: boolean;
    enable_password_auth: boolean;
    enable_password_change_form: boolean;
    /** Users may add their own model connections (Settings › Connections). */
    enable_direct_connections?: boolean;
    enable_signup: boolean;
    /** Python blocks of answers get a Run button (runs in the browser). */
    enable_code_execution?: boolean;
    code_execution_engine?: string;
    /** The composer offers the code interpreter switch. */
    enable_code_interpreter?: boolean;
    code_interpreter_engine?: string;
  };
  password_hint: string;
  /** Single sign-on buttons (names and start URLs only). */
  oauth_providers?: { id: string; name: string; login_url: string }[];
  /** Directory sign-in, when enabled. */
  ldap?: { label: string } | null;
  /** The policy for untrusted HTML shown in iframes (the server applies it; null: its default). */
  iframe_csp?: string | null;
}

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  active: boolean;
  profile_image_url: string | null;
  created_at: number;
  updated_at: number;
  last_active_at: number | null;
}

export interface Me extends User {
  auth_kind: 'session' | 'api-key';
  session_id: string | null;
  expires_at: number | null;
  impersonated_by: string | null;
  /** What a restricted session must do first (change the password, set up 2FA). */
  restrictions?: string[];
}

export interface SessionInfo {
  id: string;
  kind: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
  ip: string | null;
  user_agent: string | null;
  current: boolean;
  impersonated_by: string | null;
}

export interface UserPage {
  items: User[];
  total: number;
  page: number;
  limit: number;
}

export interface ModelInfo {
  id: string;
  name?: string;
  owned_by?: string;
}

export interface MyPermissions {
  user_id: string;
  role: Role;
  admin_bypass: boolean;
  permissions: Record<string, Record<string, boolean>>;
  groups: { id: string; name: string }[];
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  hint: string;
  allowed_endpoints: string[] | null;
  allowed_models: string[] | null;
  created_at: number;
  updated_at: number;
  rotated_at: number | null;
  expires_at: number | null;
  last_used_at: number | null;
}

export interface ChatSummary {
  id: string;
  title: string;
  folder_id: string | null;
  pinned: boolean;
  archived: boolean;
  created_at: number;
  updated_at: number;
}

export type MessageContent = string | { type: string; text?: string }[] | null;

export interface StoredMessage {
  id: string;
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content: MessageContent;
  model: string | null;
  created_at: number;
  /** An answer's tool calls, as the model sent them. */
  tool_calls?: unknown;
  /** The sources an answer was given. */
  citations?: unknown;
}

export interface ChatDetail extends ChatSummary {
  share_id: string | null;
  messages: StoredMessage[];
}

export interface Folder {
  id: string;
  name: string;
}

export interface SharedChat {
  share_id: string;
  title: string;
  messages: { role: string; content: MessageContent; model?: string | null }[];
  created_at: number;
  updated_at: number;
}

/** The text of a stored message (text parts joined; other parts are not shown). */
export function textOf(content: MessageContent): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('\n');
}

export interface TwoFactorStatus {
  enabled: boolean;
  enabled_at: number | null;
  pending_setup: boolean;
  recovery_codes_remaining: number;
}

export interface TwoFactorChallenge {
  two_factor_required: true;
  challenge_token: string;
  expires_at: number;
  methods: string[];
}
