import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { ingestError, type IngestError } from '@ingest/contracts';

export interface BodyRateOptions {
  /** After the grace, the body must keep up this average rate. */
  minBytesPerSecond: number;
  graceMs: number;
  now?: () => number;
}

/**
 * Passes a request body through and cuts it when it arrives too slowly: the body is due by
 * `start + grace + received / minRate` (mod_reqtimeout's model: every byte buys time, so a large
 * body sent at a healthy rate is never cut, and a trickle is cut soon after the grace). Node's own
 * requestTimeout bounds the whole request; this answers a trickling body well before it, with a
 * catalog code instead of a bare 408.
 *
 * It stands between the socket and the parser so that cutting it leaves the socket open: the
 * parser fails with the cut's error, the client gets a proper answer (fastify closes the
 * connection after it, the rest of the body unread). The source's own failure (the client gone)
 * ends it too, which `pipe` alone would not pass on.
 */
export class BodyMeter extends Transform {
  private received = 0;
  private readonly started: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private cutReason: IngestError | undefined;

  constructor(
    private readonly source: Readable,
    private readonly opts: BodyRateOptions,
  ) {
    super();
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    source.once('error', this.onSourceError);
    source.once('close', this.onSourceClose);
    source.pipe(this);
    this.arm();
  }

  /** Bytes passed through so far (as sent, before any decompression). */
  get bytesReceived(): number {
    return this.received;
  }

  /** Why it was cut, if it was. */
  get cut(): IngestError | undefined {
    return this.cutReason;
  }

  /** When the body is due, given what has arrived. */
  dueAt(): number {
    return this.started + this.opts.graceMs + (this.received * 1000) / this.opts.minBytesPerSecond;
  }

  /** Ends the body now with `err` (the parser sees it); the socket stays for the answer. Idempotent. */
  abort(err: IngestError): void {
    if (this.destroyed || this.writableFinished) return;
    this.cutReason = err;
    this.source.unpipe(this);
    this.destroy(err);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.received += chunk.byteLength;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.stop();
    cb();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.stop();
    cb(err);
  }

  private arm(): void {
    // One timer per body, re-armed only when it fires: a body that keeps up costs no timer churn
    // per chunk. Unref'd: a body being read keeps its socket, and the socket keeps the process.
    this.timer = setTimeout(this.check, Math.max(0, this.dueAt() - this.now()));
    this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.destroyed || this.writableFinished) return;
    if (this.now() >= this.dueAt()) {
      this.abort(ingestError('INGEST_ERR_BODY_TOO_SLOW', [this.opts.minBytesPerSecond, this.opts.graceMs / 1000, this.received]));
    } else {
      this.arm();
    }
  };

  private stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.source.off('error', this.onSourceError);
    this.source.off('close', this.onSourceClose);
  }

  private readonly onSourceError = (e: Error): void => {
    this.destroy(e);
  };

  private readonly onSourceClose = (): void => {
    if (!this.source.readableEnded) this.destroy(new Error('the client closed the connection before the body was complete'));
  };
}
