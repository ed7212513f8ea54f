import type { AckResult, Transport } from '../src/transport.ts';

export interface SentBatch {
  /** Parsed entries as the transport received them. */
  entries: Array<Record<string, unknown>>;
  /** The entries exactly as serialized. */
  raw: string[];
  at: number;
}

/**
 * A Transport for tests: answers through `respond` (default: accept all), records every attempt,
 * and tracks how many sends overlap. `hold()` parks answers until `release()`.
 */
export class FakeTransport implements Transport {
  readonly attempts: SentBatch[] = [];
  inFlight = 0;
  maxInFlight = 0;
  closed = false;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  constructor(public respond: (entries: Array<Record<string, unknown>>, attempt: number) => AckResult | Promise<AckResult> = (e) => ({ kind: 'ok', accepted: e.length, rejected: [] })) {}

  /** Entries in every attempt that got an 'ok', in order. */
  readonly delivered: Array<Record<string, unknown>> = [];

  async send(entries: readonly Buffer[], opts: { signal: AbortSignal }): Promise<AckResult> {
    const raw = entries.map((b) => b.toString('utf8'));
    const parsed = raw.map((r) => JSON.parse(r) as Record<string, unknown>);
    this.attempts.push({ entries: parsed, raw, at: Date.now() });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) {
        const aborted = new Promise<never>((_, reject) => opts.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
        await Promise.race([this.gate, aborted]);
      }
      const r = await this.respond(parsed, this.attempts.length);
      if (r.kind === 'ok') {
        const bad = new Set(r.rejected.map((x) => x.index));
        parsed.forEach((e, i) => {
          if (!bad.has(i)) this.delivered.push(e);
        });
      }
      return r;
    } finally {
      this.inFlight--;
    }
  }

  hold(): void {
    this.gate ??= new Promise<void>((r) => (this.open = r));
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.release();
  }
}
