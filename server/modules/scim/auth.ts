import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';

/**
 * The SCIM bearer token(s). From SCIM_TOKEN, or from SCIM_TOKEN_FILE — one token per line, re-read
 * when the file changes (checked at most once a second), so a token can be rotated without a
 * restart: add the new token as a second line, switch the identity provider to it, remove the old
 * line. Comparison is constant-time over SHA-256 digests, against every token (no early exit).
 */
export const MIN_TOKEN_LENGTH = 32;

function digest(v: string): Buffer {
  return createHash('sha256').update(v, 'utf8').digest();
}

export class ScimTokens {
  private digests: Buffer[] = [];
  private fileStamp = '';
  private checkedAt = 0;

  constructor(
    private readonly config: Pick<Config, 'SCIM_TOKEN' | 'SCIM_TOKEN_FILE'>,
    private readonly log: Logger,
  ) {
    if (config.SCIM_TOKEN) this.digests = [digest(config.SCIM_TOKEN)];
    else this.reload(true);
  }

  private reload(force: boolean) {
    const file = this.config.SCIM_TOKEN_FILE;
    if (!file) return;
    const now = Date.now();
    if (!force && now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      if (this.digests.length) this.log.error('SCIM_TOKEN_FILE cannot be read: every SCIM request is refused');
      this.digests = [];
      this.fileStamp = '';
      return;
    }
    if (stamp === this.fileStamp) return;
    this.fileStamp = stamp;
    const lines = readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const ok = lines.filter((l) => l.length >= MIN_TOKEN_LENGTH);
    if (ok.length < lines.length)
      this.log.warn(
        `SCIM_TOKEN_FILE: ${lines.length - ok.length} token(s) shorter than ${MIN_TOKEN_LENGTH} characters ignored`,
      );
    this.digests = ok.map(digest);
    this.log.info({ tokens: ok.length }, 'SCIM tokens loaded');
  }

  verify(presented: string): boolean {
    this.reload(false);
    const d = digest(presented);
    let ok = false;
    for (const t of this.digests) ok = timingSafeEqual(t, d) || ok;
    return ok;
  }
}
