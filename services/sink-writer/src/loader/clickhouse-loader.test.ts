import { describe, expect, it } from 'vitest';
import type { BatchHandler, LogConsumer, LogMessage, LogProducer, MessageBatch } from '@ingest/log';
import { decodeRow, encodeRow, type TableName, type TelemetryStore } from '@ingest/storage';
import { ClickHouseLoader } from './clickhouse-loader.ts';

/** Hands batches to the loader's handler on demand, as the real consumers do (and retry). */
class ManualConsumer implements LogConsumer {
  handler: BatchHandler | undefined;
  run(handler: BatchHandler): Promise<void> {
    this.handler = handler;
    return new Promise<void>(() => undefined);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const entry = (id: string, message: string) =>
  Buffer.from(encodeRow({ id, tenant: 't', type: 'log', ts: Date.UTC(2026, 10, 20), receivedAt: 1, app: '', source: '', labels: {}, name: '', value: null, unit: '', level: 'info', message, data: {} }));

function batchOf(messages: string[]): MessageBatch {
  return {
    topic: 'telemetry.v2',
    partition: 0,
    firstOffset: 0,
    lastOffset: messages.length - 1,
    messages: messages.map((m, offset) => ({ topic: 'telemetry.v2', partition: 0, offset, key: 't', value: entry(`e${offset}`, m), headers: {}, timestamp: 1 })),
  };
}

/** A store that refuses any block holding a message "bad" (as ClickHouse does, code as a string), or fails them all. */
function fakeStore(mode: { transient?: boolean }) {
  const inserted: string[] = [];
  const store = {
    insertEncoded(_t: TableName, body: Buffer): Promise<void> {
      const rows = body.toString('utf8').split('\n').filter((l) => l !== '').map((l) => decodeRow(Buffer.from(`${l.slice(0, l.lastIndexOf(',', l.lastIndexOf(',') - 1))}]`), 0, 0));
      if (mode.transient) return Promise.reject(Object.assign(new Error('Timeout error.'), { code: 'ETIMEDOUT' }));
      if (rows.some((r) => r.message === 'bad')) return Promise.reject(Object.assign(new Error('Cannot parse input'), { code: '27', type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' }));
      inserted.push(...rows.map((r) => r.id));
      return Promise.resolve();
    },
  };
  return { store: store as unknown as TelemetryStore, inserted };
}

function fakeProducer() {
  const sent: LogMessage[] = [];
  const producer: LogProducer = {
    send: (_topic, messages) => {
      sent.push(...messages);
      return Promise.resolve([]);
    },
    close: () => Promise.resolve(),
  };
  return { producer, sent };
}

describe('ClickHouseLoader failure handling', () => {
  it('a transient failure is thrown back to the consumer (which backs off and retries), never dead-lettered', async () => {
    const consumer = new ManualConsumer();
    const { store } = fakeStore({ transient: true });
    const { producer, sent } = fakeProducer();
    const loader = new ClickHouseLoader(consumer, store, 'telemetry', {}, { deadLetter: { producer, topic: 'dlq' }, refusedAttempts: 2 });
    loader.start();
    const batch = batchOf(['a', 'b']);
    for (let i = 0; i < 5; i++) await expect(consumer.handler?.(batch)).rejects.toThrow('Timeout');
    expect(sent).toEqual([]);
  });

  it('a refused batch is retried refusedAttempts times, then split: good rows land, the bad one is dead-lettered', async () => {
    const consumer = new ManualConsumer();
    const { store, inserted } = fakeStore({});
    const { producer, sent } = fakeProducer();
    const refused: string[] = [];
    const loader = new ClickHouseLoader(consumer, store, 'telemetry', { onDeadLettered: (_b, r) => refused.push(...r.map((x) => x.refusal.type)) }, { deadLetter: { producer, topic: 'dlq' }, refusedAttempts: 3 });
    loader.start();
    const batch = batchOf(['a', 'b', 'bad', 'c', 'd']);
    await expect(consumer.handler?.(batch)).rejects.toThrow('Cannot parse');
    await expect(consumer.handler?.(batch)).rejects.toThrow('Cannot parse');
    await consumer.handler?.(batch);
    expect(inserted.sort()).toEqual(['e0', 'e1', 'e3', 'e4']);
    expect(refused).toEqual(['CANNOT_PARSE_INPUT_ASSERTION_FAILED']);
    expect(sent).toHaveLength(1);
    expect(JSON.parse(sent[0]?.value.toString('utf8') ?? '{}')).toMatchObject({ tenant: 't', index: 2, code: 'INGEST_ERR_STORE_REFUSED' });
  });

  it('without a dead-letter topic (the mirror loader) a refused batch is retried like a transient one', async () => {
    const consumer = new ManualConsumer();
    const { store } = fakeStore({});
    const loader = new ClickHouseLoader(consumer, store, 'telemetry_mirror', {}, { refusedAttempts: 1 });
    loader.start();
    for (let i = 0; i < 3; i++) await expect(consumer.handler?.(batchOf(['bad']))).rejects.toThrow('Cannot parse');
  });
});

describe('dedup tokens', () => {
  it('are the same for a retry of the same range, and differ for a log that reuses its offsets', async () => {
    const consumer = new ManualConsumer();
    const tokens: string[] = [];
    const store = { insertEncoded: (_t: TableName, _b: Buffer, token: string) => Promise.resolve(void tokens.push(token)) } as unknown as TelemetryStore;
    new ClickHouseLoader(consumer, store, 'telemetry').start();
    const batch = batchOf(['a', 'b']);
    await consumer.handler?.(batch);
    await consumer.handler?.(batch);
    // The same offsets appended at other times: a topic created again, or a fresh embedded log.
    const again = { ...batch, messages: batch.messages.map((m) => ({ ...m, timestamp: m.timestamp + 60_000 })) };
    await consumer.handler?.(again);
    expect(tokens[0]).toBe(tokens[1]);
    expect(tokens[2]).not.toBe(tokens[0]);
    expect(tokens[0]).toMatch(/^live:telemetry\.v2:0:0-1@/);
  });
});
