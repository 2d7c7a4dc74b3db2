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
  not_found: 404,
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
