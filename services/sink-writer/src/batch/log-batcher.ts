import { LogRecordTooLargeError, type AppendedRange, type LogMessage, type LogProducer } from '@ingest/log';

export interface BatcherOptions {
  topic: string;
  maxEntries: number;
  maxBytes: number;
  maxWaitMs: number;
  /** Sends to the log in flight at once; more requests wait in `pending` (bounded by the caller's budget). */
  maxConcurrentSends?: number;
}

interface Waiter {
  resolve: (r: AppendedRange[]) => void;
  reject: (e: unknown) => void;
  /** Where this submit's messages sit in the batch: [start, start + count). */
  start: number;
  count: number;
}

/**
 * Group commit: messages from many requests share one log append (one fsync, one Kafka produce),
 * and each request is answered when the append holding its messages is durable. What waits here is
 * bounded by the sink's admission budget, acquired before `submit`.
 */
export class LogBatcher {
  private pending: LogMessage[] = [];
  private pendingBytes = 0;
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending = 0;
  private closed = false;
  private readonly maxConcurrent: number;
  private idleResolvers: Array<() => void> = [];

  constructor(private readonly producer: LogProducer, private readonly opts: BatcherOptions) {
    this.maxConcurrent = opts.maxConcurrentSends ?? 4;
  }

  submit(messages: LogMessage[], bytes: number): Promise<AppendedRange[]> {
    if (this.closed) return Promise.reject(new Error('batcher closed'));
    if (messages.length === 0) return Promise.resolve([]);
    const start = this.pending.length;
    for (const m of messages) this.pending.push(m);
    this.pendingBytes += bytes;
    const p = new Promise<AppendedRange[]>((resolve, reject) => this.waiters.push({ resolve, reject, start, count: messages.length }));
    if (this.pending.length >= this.opts.maxEntries || this.pendingBytes >= this.opts.maxBytes) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.opts.maxWaitMs);
    }
    return p;
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0 || this.sending >= this.maxConcurrent) return;
    const messages = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.pendingBytes = 0;
    this.waiters = [];
    this.sending++;
    this.send(messages, waiters)
      .catch((e: unknown) => {
        // send() settles every waiter itself; this only guards against a bug leaving one hanging.
        for (const w of waiters) w.reject(e);
      })
      .finally(() => {
        this.sending--;
        // Whatever piled up while every send slot was busy goes out now.
        if (this.pending.length > 0) this.flush();
        else if (this.sending === 0) for (const r of this.idleResolvers.splice(0)) r();
      });
  }

  /**
   * One append for many submits. A record the log can never take fails only the submit it came
   * from; the other submits' messages go out again without it (each round drops at least one
   * submit, so this ends). Anything of theirs already written is deduplicated downstream on the id.
   */
  private async send(messages: LogMessage[], waiters: Waiter[]): Promise<void> {
    let e: unknown;
    try {
      const ranges = await this.producer.send(this.opts.topic, messages);
      for (const w of waiters) w.resolve(ranges);
      return;
    } catch (err) {
      e = err;
    }
    const bad = e instanceof LogRecordTooLargeError ? e.indices : [];
    const refused = waiters.filter((w) => bad.some((i) => i >= w.start && i < w.start + w.count));
    if (refused.length === 0 || refused.length === waiters.length) {
      for (const w of waiters) w.reject(e);
      return;
    }
    for (const w of refused) w.reject(e);
    const again: LogMessage[] = [];
    const rest = waiters
      .filter((w) => !refused.includes(w))
      .map((w) => {
        const start = again.length;
        for (let i = w.start; i < w.start + w.count; i++) again.push(messages[i] as LogMessage);
        return { ...w, start };
      });
    await this.send(again, rest);
  }

  /** Sends what is pending and waits for every send in flight. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    if (this.sending === 0 && this.pending.length === 0) return;
    await new Promise<void>((r) => this.idleResolvers.push(r));
  }
}
