import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { HEADERS, IngestError, ingestError, isErrorCode, type ErrorCode } from '@ingest/contracts';
import { JsonText } from './json-text.ts';

export interface HopOptions {
  /** Name of the downstream service, used in error messages. */
  name: string;
  timeoutMs: number;
  /** Code to use for a 429 whose body carries no catalog code. */
  overloadedCode: ErrorCode;
  connections?: number;
  /** Sent as x-ingest-internal-token on every call, when the downstream requires it. */
  internalToken?: string | undefined;
  /** PEM file of the roots an https:// downstream is verified against; unset: the system's. */
  caFile?: string | undefined;
}

/**
 * One keep-alive hop between two of our services, and the one place that maps a downstream answer
 * onto the caller's contract: 2xx passes through; 429 and 503 keep their catalog code and
 * Retry-After; a downstream that is down, times out or answers anything else 5xx becomes 503
 * DEPENDENCY_UNAVAILABLE (the producer retries, and entry ids make that safe); a 4xx with a
 * catalog code passes through.
 */
export class HopClient {
  private readonly pool: Pool;
  private closing: Promise<void> | undefined;

  constructor(baseUrl: string, private readonly opts: HopOptions) {
    this.pool = new Pool(baseUrl, {
      connections: opts.connections ?? 64,
      keepAliveTimeout: 10_000,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      // Read once: a rotated CA reaches hops when the service restarts (certificates rotate under it).
      ...(opts.caFile !== undefined ? { connect: { ca: readFileSync(opts.caFile) } } : {}),
    });
  }

  /** `body` is serialized with JSON.stringify, unless it is a JsonText (sent as is). */
  postJson<T>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.post<T>(path, body instanceof JsonText ? body.text : JSON.stringify(body), { 'content-type': 'application/json', ...headers });
  }

  /** Sends `body` as it is (bytes made by the caller) with the content type in `headers`; the answer is JSON. */
  async post<T>(path: string, body: string | Buffer | Buffer[], headers: Record<string, string>): Promise<T> {
    let res;
    try {
      res = await this.pool.request({
        path,
        method: 'POST',
        headers: { ...(this.opts.internalToken ? { [HEADERS.internalToken]: this.opts.internalToken } : {}), ...headers },
        body: Array.isArray(body) ? Buffer.concat(body) : body,
      });
    } catch (e) {
      throw ingestError('INGEST_ERR_DEPENDENCY_UNAVAILABLE', [this.opts.name, 1], { retryAfterSeconds: 1, cause: e });
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      throw ingestError('INGEST_ERR_DEPENDENCY_UNAVAILABLE', [this.opts.name, 1], { retryAfterSeconds: 1, cause: e });
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return JSON.parse(text) as T;

    const retryAfter = Math.max(1, Number(res.headers['retry-after'] ?? 1) || 1);
    let code: string | undefined;
    let message = text.slice(0, 200);
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code;
      message = parsed.error?.message ?? message;
    } catch {
      // not one of our error bodies; keep the text
    }
    if (res.statusCode === 429) {
      return Promise.reject(new IngestError(code && isErrorCode(code) ? code : this.opts.overloadedCode, message, { retryAfterSeconds: retryAfter }));
    }
    if (res.statusCode >= 400 && res.statusCode < 500 && code && isErrorCode(code)) {
      return Promise.reject(new IngestError(code, message));
    }
    // One of ours shedding with its own code (the log down, a replica draining): the producer sees
    // the original reason, not "a downstream answered 503".
    if (res.statusCode === 503 && code && isErrorCode(code)) {
      return Promise.reject(new IngestError(code, message, { retryAfterSeconds: retryAfter }));
    }
    throw ingestError('INGEST_ERR_DEPENDENCY_UNAVAILABLE', [`${this.opts.name} answered ${res.statusCode}: ${message.slice(0, 100)}`, retryAfter], {
      retryAfterSeconds: retryAfter,
    });
  }

  /**
   * Waits for calls in flight, then closes the connections. With `graceMs`, calls still running
   * after it are aborted: a drain with a deadline must not wait a whole downstream timeout for
   * answers nobody is waiting for any more. Idempotent (a second call gets the first's promise).
   */
  close(graceMs?: number): Promise<void> {
    this.closing ??= this.shut(graceMs);
    return this.closing;
  }

  private async shut(graceMs: number | undefined): Promise<void> {
    // A close overtaken by destroy() rejects; that is the expected outcome, not an error.
    const closed = this.pool.close().then(
      () => true,
      () => true,
    );
    if (graceMs === undefined) {
      await closed;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
      timer.unref();
    });
    const done = await Promise.race([closed, expired]);
    clearTimeout(timer);
    if (!done) await this.pool.destroy();
  }
}
