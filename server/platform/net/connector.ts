import { isIP, type Socket } from 'node:net';
import { buildConnector } from 'undici';
import { sameAddress } from './address.js';
import { FetchError, UrlBlockedError } from './errors.js';
import { bareHost, type UrlPolicy } from './policy.js';

export type Connector = buildConnector.connector;

export interface ConnectInfo {
  host: string;
  address: string;
  port: number;
}

const RETRYABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAFNOSUPPORT']);

/** The real socket layer, with a last check that the peer is the address we were told to reach. */
export function verifiedBaseConnector(tls: { rejectUnauthorized: boolean; timeoutMs: number }): Connector {
  const base = buildConnector({ rejectUnauthorized: tls.rejectUnauthorized, timeout: tls.timeoutMs });
  return (opts, cb) => {
    base(opts, (err, socket) => {
      if (err) return cb(err, null);
      if (!sameAddress((socket as Socket).remoteAddress, opts.hostname)) {
        (socket as Socket).destroy();
        return cb(new UrlBlockedError('address_mismatch', 'The connection did not reach the checked address'), null);
      }
      cb(null, socket as Socket);
    });
  };
}

/**
 * undici `connect` hook: resolves the origin's host once, checks every address with the policy,
 * then opens the socket to exactly one of the checked addresses (the literal IP is passed to the
 * socket layer, so Node performs no lookup of its own). SNI and certificate checks use the name.
 */
export function checkedConnector(policy: UrlPolicy, base: Connector, onConnect?: (i: ConnectInfo) => void): Connector {
  return (opts, cb) => {
    const host = bareHost(opts.hostname);
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    policy.resolveAndCheck(host).then(
      (addresses) => {
        const attempt = (i: number) => {
          const address = addresses[i]!;
          onConnect?.({ host, address, port });
          base(
            {
              ...opts,
              hostname: address,
              host: undefined,
              servername: isIP(host) ? undefined : host,
              port: String(port),
            },
            (err, socket) => {
              if (err) {
                const code = (err as NodeJS.ErrnoException).code ?? '';
                if (i + 1 < addresses.length && RETRYABLE.has(code)) return attempt(i + 1);
                return cb(err, null);
              }
              cb(null, socket!);
            },
          );
        };
        attempt(0);
      },
      (err: unknown) =>
        cb(
          err instanceof UrlBlockedError || err instanceof FetchError
            ? err
            : new FetchError('dns_failed', `The host ${host} did not resolve`),
          null,
        ),
    );
  };
}
