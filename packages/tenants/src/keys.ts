import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys look like `ik_<8-char id>_<secret>`. The id part is not secret: it names the key in
 * listings and revocations and narrows the lookup; only SHA-256 of the whole key is stored.
 */
const KEY_RE = /^ik_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{32,128})$/;

export function generateApiKey(): { key: string; prefix: string; sha256: string } {
  const id = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').slice(0, 8);
  const secret = randomBytes(24).toString('base64url');
  const key = `ik_${id}_${secret}`;
  return { key, prefix: `ik_${id}`, sha256: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The key's public prefix (`ik_XXXXXXXX`), or undefined when the key is malformed. */
export function keyPrefix(key: string): string | undefined {
  const m = KEY_RE.exec(key);
  return m ? `ik_${m[1]}` : undefined;
}

/** Constant-time comparison of a presented key against a stored hex SHA-256. */
export function keyMatches(presented: string, storedSha256: string): boolean {
  const a = Buffer.from(hashApiKey(presented), 'hex');
  const b = Buffer.from(storedSha256, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
