/**
 * Topic and group names become path components, so they are limited to Kafka's legal topic
 * characters. That keeps every name valid on both backends and rules out path traversal.
 */
const NAME_RE = /^[A-Za-z0-9._-]{1,249}$/;

export function assertName(kind: 'topic' | 'group', name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name === '.' || name === '..') {
    throw new RangeError(`invalid ${kind} name ${JSON.stringify(name)}: use 1-249 of [A-Za-z0-9._-]`);
  }
}
