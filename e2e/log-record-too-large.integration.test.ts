import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogRecordTooLargeError, openLog, type DurableLog } from '@ingest/log';
import { batchOf, logEntry, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { tenantId } from './helpers.ts';

const MARK = 'refused-by-the-log-as-too-large';

/**
 * The real embedded log, except that its producer refuses records carrying MARK the way the Kafka
 * producer refuses a record over the topic's max.message.bytes (the normalizer's 64 KiB entry limit
 * keeps a real one from getting that far). Under test: what the sink writer and the edge make of it.
 */
function refusingMarked(real: DurableLog): DurableLog {
  return {
    kind: real.kind,
    producer() {
      const p = real.producer();
      return {
        send: async (topic, messages) => {
          const marked = messages.flatMap((m, i) => (m.value.includes(MARK) ? [i] : []));
          if (marked.length > 0) throw new LogRecordTooLargeError('too large for the log (test)', marked, 300_000, 262_144);
          return p.send(topic, messages);
        },
        close: () => p.close(),
      };
    },
    consumer: (o) => real.consumer(o),
    admin: () => real.admin(),
    close: () => real.close(),
  };
}

describe('an entry the log can never take', () => {
  let stack: InProcessStack;

  beforeAll(async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'too-large-'));
    const real = openLog({ dir: path.join(dataDir, 'log'), partitions: 3, fsync: 'never', clientId: 'too-large' });
    // A long batch wait so the two requests below share one append.
    stack = await startInProcessStack({ dataDir, log: refusingMarked(real), env: { SINK_BATCH_MAX_WAIT_MS: '200' } });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('fails its own request with 413 INGEST_ERR_LOG_RECORD_TOO_LARGE (not a 503 to retry); a request batched with it lands', async () => {
    const bad = tenantId('bad');
    const good = tenantId('good');
    const badKey = await stack.tenant(bad);
    const goodKey = await stack.tenant(good);
    const badBatch = [...batchOf(5), logEntry(5, { data: { level: 'info', message: MARK } })];

    const [refused, taken] = await Promise.all([postIngest(stack.edgeUrl, badKey, badBatch), postIngest(stack.edgeUrl, goodKey, batchOf(20))]);

    expect(refused.status).toBe(413);
    expect(refused.body.error?.code).toBe('INGEST_ERR_LOG_RECORD_TOO_LARGE');
    expect(refused.body.error?.retryable).toBe(false);
    expect(refused.body.error?.message).toMatch(/300000 bytes.*262144 bytes/);
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(taken.status).toBe(200);
    expect(taken.body.accepted).toBe(20);

    await stack.waitLoaded();
    expect((await stack.rowStats(good)).final).toBe(20);
    expect((await stack.rowStats(bad)).final).toBe(0);
  });
});
