import { describe, expect, it } from 'vitest';
import { LogRecordTooLargeError, type AppendedRange, type LogMessage, type LogProducer } from '@ingest/log';
import { LogBatcher } from './log-batcher.ts';

/** A producer that records each append; the batcher's own logic is what is under test. */
function recordingProducer(fail = false) {
  const sends: number[] = [];
  let release: (() => void) | undefined;
  const producer: LogProducer & { sends: number[]; holdNext(): void } = {
    sends,
    holdNext() {
      const gate = new Promise<void>((r) => (release = r));
      const orig = this.send.bind(this);
      this.send = async (t, m) => {
        await gate;
        this.send = orig;
        return orig(t, m);
      };
    },
    async send(_topic: string, messages: LogMessage[]): Promise<AppendedRange[]> {
      sends.push(messages.length);
      if (fail) throw new Error('log down');
      return [{ partition: 0, firstOffset: 0, lastOffset: messages.length - 1 }];
    },
    async close() {},
  };
  return { producer, release: () => release?.() };
}

const msg = (n: number): LogMessage[] => Array.from({ length: n }, (_, i) => ({ key: 't', value: Buffer.from(String(i)) }));

describe('LogBatcher', () => {
  it('groups concurrent submissions into one append', async () => {
    const { producer } = recordingProducer();
    const b = new LogBatcher(producer, { topic: 't', maxEntries: 1000, maxBytes: 1 << 20, maxWaitMs: 5 });
    await Promise.all([b.submit(msg(10), 10), b.submit(msg(20), 20), b.submit(msg(30), 30)]);
    expect(producer.sends).toEqual([60]);
    await b.close();
  });

  it('flushes at once when the batch is full', async () => {
    const { producer } = recordingProducer();
    const b = new LogBatcher(producer, { topic: 't', maxEntries: 50, maxBytes: 1 << 20, maxWaitMs: 60_000 });
    await b.submit(msg(50), 50);
    expect(producer.sends).toEqual([50]);
    await b.close();
  });

  it('rejects every waiter of a failed append', async () => {
    const { producer } = recordingProducer(true);
    const b = new LogBatcher(producer, { topic: 't', maxEntries: 1000, maxBytes: 1 << 20, maxWaitMs: 1 });
    const r = await Promise.allSettled([b.submit(msg(1), 1), b.submit(msg(1), 1)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    await b.close();
  });

  it('close() sends what is pending and waits for appends in flight', async () => {
    const { producer, release } = recordingProducer();
    producer.holdNext();
    const b = new LogBatcher(producer, { topic: 't', maxEntries: 1000, maxBytes: 1 << 20, maxWaitMs: 60_000 });
    const p = b.submit(msg(3), 3);
    let closed = false;
    const c = b.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    release();
    await Promise.all([p, c]);
    expect(producer.sends).toEqual([3]);
    await expect(b.submit(msg(1), 1)).rejects.toThrow(/closed/);
  });

  it('fails only the submit holding a record the log can never take, and sends the others without it', async () => {
    const sends: string[][] = [];
    const producer: LogProducer = {
      async send(_topic, messages) {
        const values = messages.map((m) => m.value.toString());
        sends.push(values);
        const big = values.flatMap((v, i) => (v === 'BIG' ? [i] : []));
        if (big.length > 0) throw new LogRecordTooLargeError('too large', big, 9_999, 100);
        return [{ partition: 0, firstOffset: 0, lastOffset: messages.length - 1 }];
      },
      async close() {},
    };
    const b = new LogBatcher(producer, { topic: 't', maxEntries: 1000, maxBytes: 1 << 20, maxWaitMs: 5 });
    const one = (v: string): LogMessage => ({ key: 't', value: Buffer.from(v) });
    const results = await Promise.allSettled([
      b.submit([one('a1'), one('a2')], 4),
      b.submit([one('b1'), one('BIG'), one('b3')], 6),
      b.submit([one('c1')], 2),
      b.submit([one('BIG')], 3),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(LogRecordTooLargeError);
    expect(sends).toEqual([
      ['a1', 'a2', 'b1', 'BIG', 'b3', 'c1', 'BIG'],
      ['a1', 'a2', 'c1'],
    ]);
    await b.close();
  });
});
