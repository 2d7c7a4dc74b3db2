/**
 * Why safe-fetch refused a URL. `rule` is stable (tests and the API's `url_blocked` message use it);
 * the message names the rule and the setting that controls it, never an internal address list.
 */
export type BlockRule =
  | 'scheme'
  | 'invalid_url'
  | 'credentials_in_url'
  | 'metadata_endpoint'
  | 'private_address'
  | 'special_address'
  | 'invalid_address'
  | 'filter_list'
  | 'offline_mode'
  | 'redirect_not_allowed'
  | 'address_mismatch';

export class UrlBlockedError extends Error {
  constructor(
    readonly rule: BlockRule,
    message: string,
  ) {
    super(message);
    this.name = 'UrlBlockedError';
  }
}

export type FetchFailure =
  'dns_failed' | 'connect_failed' | 'timeout' | 'too_large' | 'too_many_redirects' | 'bad_response' | 'aborted';

/** The URL was allowed but the request did not complete. */
export class FetchError extends Error {
  constructor(
    readonly reason: FetchFailure,
    message: string,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}
