import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import type { EntryRejection } from '@ingest/contracts';

const gzipAsync = promisify(gzip);

/**
 * What one delivery attempt came to. The client, not the transport, decides what to do with it:
 *  - ok        the edge took the batch (2xx); `rejected` lists entries it refused for good
 *  - retry     nothing was taken and a later attempt can succeed (429, 503, 5xx, network, timeout)
 *  - reject    the whole batch is refused for good (a non-retryable 4xx)
 *  - tooLarge  the batch is over the edge's body or entry limit (413): split it and resend
 *  - auth      the credential was refused (401/403): the data is fine, the key is not
 */
export type AckResult =
  | { kind: 'ok'; accepted: number; rejected: EntryRejection[] }
  | { kind: 'retry'; status?: number; code: string; message: string; retryAfterMs?: number }
  | { kind: 'reject'; status?: number; code: string; message: string }
  | { kind: 'tooLarge'; status?: number; code: string; message: string }
  | { kind: 'auth'; status?: number; code: string; message: string };

/**
 * Delivers one batch. `entries` are the entries as UTF-8 JSON, exactly as record() serialized
 * them, so a transport never re-encodes. A transport should not throw; a throw counts as 'retry'.
 */
export interface Transport {
  send(entries: readonly Buffer[], opts: { signal: AbortSignal }): Promise<AckResult>;
  close(): Promise<void>;
}

export interface HttpTransportOptions {
  /** Base URL of the edge (or a load balancer in front of it); `/v2/ingest` is appended. */
  endpoint: string;
  apiKey: string;
  /** Sockets kept to the edge; the client passes its maxInFlight. */
  connections?: number;
  /** Per-request budget for headers and body (ms). */
  timeoutMs?: number;
  /** zlib level 1–9; the default trades a little ratio for CPU on the producer. */
  gzipLevel?: number;
  userAgent?: string;
}

/** Upper bound on a response body we read; an edge answer is a few hundred bytes. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

/** POSTs gzip'd JSON arrays to `${endpoint}/v2/ingest` over a keep-alive undici pool. */
export class HttpTransport implements Transport {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly gzipLevel: number;
  private closed = false;

  constructor(opts: HttpTransportOptions) {
    const url = new URL(opts.endpoint);
    this.path = `${url.pathname.replace(/\/+$/, '')}/v2/ingest`;
    const timeout = opts.timeoutMs ?? 30_000;
    this.pool = new Pool(url.origin, {
      connections: Math.max(1, opts.connections ?? 4),
      keepAliveTimeout: 10_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connectTimeout: Math.min(timeout, 10_000),
    });
    this.gzipLevel = opts.gzipLevel ?? 4;
    this.headers = {
      authorization: `Bearer ${opts.apiKey}`,
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'user-agent': opts.userAgent ?? 'ingest-client/0.1',
    };
  }

  async send(entries: readonly Buffer[], opts: { signal: AbortSignal }): Promise<AckResult> {
    const parts: Buffer[] = [OPEN];
    entries.forEach((e, i) => {
      if (i > 0) parts.push(COMMA);
      parts.push(e);
    });
    parts.push(CLOSE);
    const body = await gzipAsync(Buffer.concat(parts), { level: this.gzipLevel });
    let res;
    try {
      res = await this.pool.request({ path: this.path, method: 'POST', headers: this.headers, body, signal: opts.signal });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return { kind: 'retry', code: err.code ?? err.name ?? 'NETWORK', message: err.message };
    }
    let text: string;
    try {
      text = await readBounded(res.body, MAX_RESPONSE_BYTES);
    } catch (e) {
      return { kind: 'retry', status: res.statusCode, code: 'RESPONSE_READ_FAILED', message: (e as Error).message };
    }
    return interpretResponse(res.statusCode, res.headers['retry-after'], text, entries.length);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.destroy();
  }
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) {
      body.destroy();
      break;
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Maps an edge answer onto an AckResult. Exported for tests of the mapping alone. */
export function interpretResponse(status: number, retryAfterHeader: string | string[] | undefined, text: string, sent: number): AckResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (status >= 200 && status < 300) {
    const b = parsed as { accepted?: unknown; rejected?: unknown } | undefined;
    const rejected = Array.isArray(b?.rejected) ? b.rejected.filter(isRejection) : [];
    // A 2xx means the edge committed the batch; an answer we cannot read does not undo that.
    const accepted = typeof b?.accepted === 'number' ? b.accepted : sent - rejected.length;
    return { kind: 'ok', accepted, rejected };
  }
  const err = (parsed as { error?: { code?: unknown; message?: unknown; retryable?: unknown } } | undefined)?.error;
  const code = typeof err?.code === 'string' ? err.code : `HTTP_${status}`;
  const message = typeof err?.message === 'string' ? err.message : text.slice(0, 200);
  if (status === 400 && code === 'INGEST_ERR_NO_VALID_ENTRIES') {
    const listed = (parsed as { rejected?: unknown }).rejected;
    // No entry was taken, each for its own reason: the same per-entry refusals as a 200 with
    // accepted 0, not a refusal of the request (which would be bisected, and lose the reasons).
    if (Array.isArray(listed)) return { kind: 'ok', accepted: 0, rejected: everyEntry(listed.filter(isRejection), sent, code, message) };
  }
  const retryAfterMs = parseRetryAfter(retryAfterHeader);
  if (status === 401 || status === 403) return { kind: 'auth', status, code, message };
  if (status === 413) return { kind: 'tooLarge', status, code, message };
  if (status === 408 || status === 425 || status === 429 || status >= 500) {
    return { kind: 'retry', status, code, message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  if (err?.retryable === true) return { kind: 'retry', status, code, message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  return { kind: 'reject', status, code, message };
}

/**
 * The listed rejections plus one for each sent entry the list leaves out (an edge may cap the
 * list), so every entry of a batch refused whole is counted once.
 */
function everyEntry(listed: EntryRejection[], sent: number, code: string, message: string): EntryRejection[] {
  const seen = new Set<number>();
  const out: EntryRejection[] = [];
  for (const r of listed) {
    if (r.index < 0 || r.index >= sent || seen.has(r.index)) continue;
    seen.add(r.index);
    out.push(r);
  }
  for (let i = 0; i < sent && out.length < sent; i++) if (!seen.has(i)) out.push({ index: i, code, message });
  return out;
}

function isRejection(x: unknown): x is EntryRejection {
  const r = x as EntryRejection | null;
  return typeof r === 'object' && r !== null && typeof r.index === 'number' && typeof r.code === 'string';
}

/** Retry-After as delay-seconds or an HTTP-date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(v) ? v[0] : v;
  if (raw === undefined || raw.trim() === '') return undefined;
  const t = raw.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const at = Date.parse(t);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
