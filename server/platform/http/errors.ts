/**
 * The error registry: every error a client can see has a stable code, asserted in tests.
 * Responses are `{"error":{"code","message"}}`; unknown errors become a generic 500 with the
 * request id and nothing else (no stack, no SQL, no upstream body).
 */
export const ERROR_STATUS = {
  validation_failed: 400,
  invalid_json: 400,
  password_too_long: 400,
  password_too_weak: 400,
  invalid_request: 400,
  unauthenticated: 401,
  invalid_credentials: 401,
  token_invalid: 401,
  token_expired: 401,
  session_revoked: 401,
  account_pending: 403,
  account_inactive: 403,
  forbidden: 403,
  admin_required: 403,
  csrf_origin_mismatch: 403,
  signup_disabled: 403,
  password_auth_disabled: 403,
  login_form_disabled: 403,
  password_change_disabled: 403,
  // conversations and personal data
  sharing_disabled: 403,
  admin_export_disabled: 403,
  reauthentication_failed: 403,
  not_found: 404,
  // access control, groups, API keys, impersonation
  session_required: 403,
  permission_required: 403,
  api_keys_disabled: 403,
  api_key_endpoint_forbidden: 403,
  api_key_model_forbidden: 403,
  cannot_impersonate: 403,
  api_key_invalid: 401,
  api_key_expired: 401,
  invalid_grant: 400,
  group_name_taken: 409,
  api_key_limit: 409,
  not_impersonating: 409,
  // model gateway: connections, models, chat completions, limits
  model_not_found: 404,
  model_access_denied: 403,
  direct_connections_disabled: 403,
  passthrough_disabled: 403,
  budget_exceeded: 429,
  concurrency_limited: 429,
  upstream_rejected: 400,
  upstream_rate_limited: 429,
  upstream_error: 502,
  upstream_timeout: 504,
  secret_unreadable: 500,
  // account security: two-factor authentication, forced password change
  password_change_required: 403,
  two_factor_enrolment_required: 403,
  two_factor_disabled: 403,
  two_factor_enforced: 403,
  two_factor_code_invalid: 400,
  two_factor_challenge_invalid: 401,
  two_factor_already_enabled: 409,
  two_factor_not_enabled: 409,
  two_factor_setup_required: 409,
  password_reuse: 400,
  // files, knowledge, outbound requests
  url_blocked: 400,
  fetch_failed: 502,
  file_too_large: 413,
  too_many_files: 400,
  file_type_not_allowed: 415,
  file_content_mismatch: 415,
  invalid_image: 400,
  extraction_failed: 422,
  // single sign-on and directory (OIDC, LDAP, trusted header)
  oauth_state_invalid: 400,
  oauth_failed: 401,
  oauth_email_missing: 403,
  oauth_domain_not_allowed: 403,
  oauth_group_blocked: 403,
  oauth_role_claim_missing: 403,
  oauth_role_not_allowed: 403,
  oauth_account_exists: 409,
  oauth_provider_unavailable: 502,
  ldap_disabled: 403,
  ldap_unavailable: 503,
  trusted_header_mismatch: 401,
  trusted_header_invalid: 401,
  method_not_allowed: 405,
  email_taken: 409,
  last_admin: 409,
  conflict: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
  }
}

export const notFound = (what = 'Resource') => new AppError('not_found', `${what} not found`);
export const forbidden = (message = 'You do not have permission to do this') => new AppError('forbidden', message);

export function errorBody(code: string, message: string, details?: Record<string, unknown>) {
  return { error: { code, message, ...(details ? { details } : {}) } };
}
