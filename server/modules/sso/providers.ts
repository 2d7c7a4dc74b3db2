import { readFileSync } from 'node:fs';
import type { Config } from '../../config/index.js';
import { ConfigError, ConfigErrors } from '../../config/index.js';

/**
 * The OAuth / OpenID Connect providers HridaAI can offer, derived from the settings once at start.
 * `oidc` is the generic provider (issuer discovery); `google` and `microsoft` are OpenID Connect
 * presets with a fixed issuer; `github` is plain OAuth 2.0 (no ID token).
 */
export type ProviderId = 'oidc' | 'google' | 'microsoft' | 'github';
export const PROVIDER_IDS: readonly ProviderId[] = ['oidc', 'google', 'microsoft', 'github'];

export interface ProviderDef {
  id: ProviderId;
  /** Text of the sign-in button. */
  name: string;
  kind: 'oidc' | 'oauth2';
  /** Expected issuer (OpenID Connect kinds). */
  issuer: string;
  clientId: string;
  clientSecret: string | null;
  scope: string;
  /** Registered redirect URI, or null: derived from the request. */
  redirectUri: string | null;
  authMethod: 'client_secret_basic' | 'client_secret_post';
  /** OAuth 2.0 endpoints (github). */
  endpoints?: { authorization: string; token: string; api: string };
}

export const GITHUB_ENDPOINTS = {
  authorization: 'https://github.com/login/oauth/authorize',
  token: 'https://github.com/login/oauth/access_token',
  api: 'https://api.github.com',
};

const WELL_KNOWN = '/.well-known/openid-configuration';

/** OPENID_PROVIDER_URL may be the issuer or its discovery URL; the issuer is what ID tokens must name. */
export function issuerFromProviderUrl(url: string): string {
  const u = new URL(url);
  u.search = '';
  let s = u.href;
  if (u.pathname.endsWith(WELL_KNOWN)) s = s.slice(0, s.length - WELL_KNOWN.length);
  return s.replace(/\/+$/, '') || s;
}

export function configuredProviders(config: Config): ProviderDef[] {
  const out: ProviderDef[] = [];
  if (config.OAUTH_CLIENT_ID && config.OPENID_PROVIDER_URL)
    out.push({
      id: 'oidc',
      name: config.OAUTH_PROVIDER_NAME || 'SSO',
      kind: 'oidc',
      issuer: issuerFromProviderUrl(config.OPENID_PROVIDER_URL),
      clientId: config.OAUTH_CLIENT_ID,
      clientSecret: config.OAUTH_CLIENT_SECRET,
      scope: config.OAUTH_SCOPES ?? 'openid email profile',
      redirectUri: config.OPENID_REDIRECT_URI,
      authMethod: config.OAUTH_TOKEN_ENDPOINT_AUTH_METHOD,
    });
  if (config.GOOGLE_CLIENT_ID)
    out.push({
      id: 'google',
      name: 'Google',
      kind: 'oidc',
      issuer: 'https://accounts.google.com',
      clientId: config.GOOGLE_CLIENT_ID,
      clientSecret: config.GOOGLE_CLIENT_SECRET,
      scope: config.GOOGLE_OAUTH_SCOPE ?? 'openid email profile',
      redirectUri: config.GOOGLE_REDIRECT_URI,
      authMethod: 'client_secret_post',
    });
  if (config.MICROSOFT_CLIENT_ID && config.MICROSOFT_CLIENT_TENANT_ID)
    out.push({
      id: 'microsoft',
      name: 'Microsoft',
      kind: 'oidc',
      issuer: `https://login.microsoftonline.com/${config.MICROSOFT_CLIENT_TENANT_ID}/v2.0`,
      clientId: config.MICROSOFT_CLIENT_ID,
      clientSecret: config.MICROSOFT_CLIENT_SECRET,
      scope: config.MICROSOFT_OAUTH_SCOPE ?? 'openid email profile',
      redirectUri: config.MICROSOFT_REDIRECT_URI,
      authMethod: 'client_secret_post',
    });
  if (config.GITHUB_CLIENT_ID)
    out.push({
      id: 'github',
      name: 'GitHub',
      kind: 'oauth2',
      issuer: 'https://github.com',
      clientId: config.GITHUB_CLIENT_ID,
      clientSecret: config.GITHUB_CLIENT_SECRET,
      scope: config.GITHUB_CLIENT_SCOPE ?? 'user:email',
      redirectUri: config.GITHUB_CLIENT_REDIRECT_URI,
      authMethod: 'client_secret_post',
      endpoints: GITHUB_ENDPOINTS,
    });
  return out;
}

/** Reads a secret from a `*_FILE` setting (trailing newline removed). */
export function readSecretFile(name: string, file: string): string {
  let v: string;
  try {
    v = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigErrors([
      new ConfigError(name, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`),
    ]);
  }
  v = v.replace(/\r?\n$/, '');
  if (v === '') throw new ConfigErrors([new ConfigError(name, `${file} is empty`)]);
  return v;
}

export interface SsoSecrets {
  ldapAppPassword: string | null;
}

/**
 * Cross-setting rules of the area, checked when the server is built (the server refuses to start
 * with the variable's name). Returns the warnings to log.
 */
export function checkSsoConfig(config: Config): { warnings: string[]; secrets: SsoSecrets } {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const both = (a: string, b: string) => new ConfigError(b, `${a} and ${b} are exclusive; set only one`);

  if (config.OAUTH_CLIENT_ID && !config.OPENID_PROVIDER_URL)
    errors.push(new ConfigError('OPENID_PROVIDER_URL', 'is required when OAUTH_CLIENT_ID is set'));
  if (config.OPENID_PROVIDER_URL && !config.OAUTH_CLIENT_ID)
    errors.push(new ConfigError('OAUTH_CLIENT_ID', 'is required when OPENID_PROVIDER_URL is set'));
  if (config.MICROSOFT_CLIENT_ID && !config.MICROSOFT_CLIENT_TENANT_ID)
    errors.push(new ConfigError('MICROSOFT_CLIENT_TENANT_ID', 'is required when MICROSOFT_CLIENT_ID is set'));
  if (config.GITHUB_CLIENT_ID && !config.GITHUB_CLIENT_SECRET)
    errors.push(new ConfigError('GITHUB_CLIENT_SECRET', 'is required when GITHUB_CLIENT_ID is set'));
  if (config.GOOGLE_CLIENT_ID && !config.GOOGLE_CLIENT_SECRET)
    errors.push(new ConfigError('GOOGLE_CLIENT_SECRET', 'is required when GOOGLE_CLIENT_ID is set'));
  if (config.MICROSOFT_CLIENT_ID && !config.MICROSOFT_CLIENT_SECRET)
    errors.push(new ConfigError('MICROSOFT_CLIENT_SECRET', 'is required when MICROSOFT_CLIENT_ID is set'));
  if (config.ENABLE_OAUTH_ROLE_MANAGEMENT && config.OAUTH_ADMIN_ROLES.length + config.OAUTH_ALLOWED_ROLES.length === 0)
    errors.push(
      new ConfigError('OAUTH_ALLOWED_ROLES', 'must list at least one role when ENABLE_OAUTH_ROLE_MANAGEMENT=true'),
    );
  if (config.OAUTH_ALLOWED_DOMAINS.length === 0)
    errors.push(new ConfigError('OAUTH_ALLOWED_DOMAINS', 'must be * or a list of domains'));
  if (config.OAUTH_ALLOWED_DOMAINS.includes('*') && config.OAUTH_ALLOWED_DOMAINS.length > 1)
    errors.push(new ConfigError('OAUTH_ALLOWED_DOMAINS', '* cannot be combined with domains'));
  if (config.OAUTH_MERGE_ACCOUNTS_BY_EMAIL)
    warnings.push(
      'OAUTH_MERGE_ACCOUNTS_BY_EMAIL=true: a first OAuth sign-in with a verified e-mail takes over the local account with that e-mail. Only safe if every provider verifies e-mail addresses.',
    );

  // Trusted header
  if (config.HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER && config.FORWARDED_ALLOW_IPS === '*')
    warnings.push(
      `HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER is set but FORWARDED_ALLOW_IPS is "*": the header is IGNORED (any client could forge it). List your authenticating proxy in FORWARDED_ALLOW_IPS to use it.`,
    );
  if (
    !config.HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER &&
    (config.HRIDAAI_AUTH_TRUSTED_NAME_HEADER || config.HRIDAAI_AUTH_TRUSTED_GROUPS_HEADER)
  )
    warnings.push(
      'HRIDAAI_AUTH_TRUSTED_NAME_HEADER / _GROUPS_HEADER have no effect without HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER.',
    );

  // LDAP
  let ldapAppPassword = config.LDAP_APP_PASSWORD;
  if (config.LDAP_APP_PASSWORD && config.LDAP_APP_PASSWORD_FILE)
    errors.push(both('LDAP_APP_PASSWORD', 'LDAP_APP_PASSWORD_FILE'));
  else if (config.LDAP_APP_PASSWORD_FILE && config.ENABLE_LDAP) {
    try {
      ldapAppPassword = readSecretFile('LDAP_APP_PASSWORD_FILE', config.LDAP_APP_PASSWORD_FILE);
    } catch (e) {
      errors.push(...(e as ConfigErrors).errors);
    }
  }
  if (config.ENABLE_LDAP) {
    if (!config.LDAP_SEARCH_BASE) errors.push(new ConfigError('LDAP_SEARCH_BASE', 'is required when ENABLE_LDAP=true'));
    if (config.LDAP_USE_TLS && config.LDAP_USE_STARTTLS)
      errors.push(
        new ConfigError(
          'LDAP_USE_STARTTLS',
          'LDAPS (LDAP_USE_TLS=true) and StartTLS are exclusive: set LDAP_USE_TLS=false to use StartTLS',
        ),
      );
    if (config.LDAP_APP_DN && !ldapAppPassword && !config.LDAP_APP_PASSWORD_FILE)
      errors.push(
        new ConfigError('LDAP_APP_PASSWORD', 'is required when LDAP_APP_DN is set (or LDAP_APP_PASSWORD_FILE)'),
      );
    if (config.LDAP_CA_CERT_FILE) {
      try {
        readFileSync(config.LDAP_CA_CERT_FILE);
      } catch (e) {
        errors.push(
          new ConfigError(
            'LDAP_CA_CERT_FILE',
            `cannot read ${config.LDAP_CA_CERT_FILE}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
          ),
        );
      }
    }
    if (!config.LDAP_USE_TLS && !config.LDAP_USE_STARTTLS)
      warnings.push(
        'ENABLE_LDAP=true without LDAP_USE_TLS or LDAP_USE_STARTTLS: directory passwords cross the network in clear text.',
      );
    if ((config.LDAP_USE_TLS || config.LDAP_USE_STARTTLS) && !config.LDAP_VALIDATE_CERT)
      warnings.push('LDAP_VALIDATE_CERT=false: the directory server is not authenticated (testing only).');
  }

  // SCIM
  if (config.SCIM_TOKEN && config.SCIM_TOKEN_FILE) errors.push(both('SCIM_TOKEN', 'SCIM_TOKEN_FILE'));
  if (config.ENABLE_SCIM && !config.SCIM_TOKEN && !config.SCIM_TOKEN_FILE)
    errors.push(new ConfigError('SCIM_TOKEN', 'is required when ENABLE_SCIM=true (or SCIM_TOKEN_FILE)'));
  if (config.ENABLE_SCIM && config.SCIM_TOKEN_FILE) {
    try {
      readSecretFile('SCIM_TOKEN_FILE', config.SCIM_TOKEN_FILE);
    } catch (e) {
      errors.push(...(e as ConfigErrors).errors);
    }
  }
  if (config.SCIM_AUTH_PROVIDER && !configuredProviders(config).some((p) => p.id === config.SCIM_AUTH_PROVIDER))
    warnings.push(`SCIM_AUTH_PROVIDER=${config.SCIM_AUTH_PROVIDER} names a provider that is not configured.`);

  if (errors.length) throw new ConfigErrors(errors);
  return { warnings, secrets: { ldapAppPassword } };
}
