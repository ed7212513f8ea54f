import { logLevel, type Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { LogUnavailableError, type StoredMessage } from '../types.ts';
import { splitIntoBatches } from './consumer.ts';
import { kafkajsLogCreator } from './logging.ts';
import { rangesFromResponse } from './producer.ts';
import { headersToRecord, unavailable, withDeadline } from './util.ts';

function stored(offset: number, bytes: number): StoredMessage {
  return { topic: 't', partition: 0, offset, key: 'k', value: Buffer.alloc(bytes), headers: {}, timestamp: 0 };
}

describe('splitIntoBatches', () => {
  it('bounds messages and value bytes per batch, keeping offsets contiguous', () => {
    const msgs = Array.from({ length: 10 }, (_, i) => stored(100 + i, 10));
    const byCount = splitIntoBatches('t', 0, msgs, 4, 1_000);
    expect(byCount.map((b) => [b.firstOffset, b.lastOffset])).toEqual([
      [100, 103],
      [104, 107],
      [108, 109],
    ]);
    const byBytes = splitIntoBatches('t', 0, msgs, 100, 25);
    expect(byBytes.every((b) => b.messages.length === 2)).toBe(true);
    expect(byBytes.flatMap((b) => b.messages.map((m) => m.offset))).toEqual(msgs.map((m) => m.offset));
  });

  it('hands an oversized message over alone rather than never', () => {
    const batches = splitIntoBatches('t', 0, [stored(1, 5), stored(2, 500), stored(3, 5)], 10, 100);
    expect(batches.map((b) => b.messages.length)).toEqual([1, 1, 1]);
    expect(splitIntoBatches('t', 0, [], 10, 100)).toEqual([]);
  });
});

describe('rangesFromResponse', () => {
  it('turns base offsets and recorded partitions into inclusive ranges', () => {
    const msgs: Message[] = [{ value: 'a' }, { value: 'b' }, { value: 'c' }, { value: 'd' }];
    const assigned = new WeakMap<Message, number>([
      [msgs[0]!, 2],
      [msgs[1]!, 0],
      [msgs[2]!, 2],
      [msgs[3]!, 2],
    ]);
    const ranges = rangesFromResponse(
      [
        { topicName: 't', partition: 2, errorCode: 0, baseOffset: '40' },
        { topicName: 't', partition: 0, errorCode: 0, baseOffset: '7' },
      ],
      msgs,
      assigned,
    );
    expect(ranges).toEqual([
      { partition: 0, firstOffset: 7, lastOffset: 7 },
      { partition: 2, firstOffset: 40, lastOffset: 42 },
    ]);
  });

  it('refuses to guess when the response does not cover every partition', () => {
    const msgs: Message[] = [{ value: 'a' }];
    const assigned = new WeakMap<Message, number>([[msgs[0]!, 1]]);
    expect(() => rangesFromResponse([], msgs, assigned)).toThrow(/no produce response/);
  });
});

describe('helpers', () => {
  it('flattens headers, last value winning', () => {
    expect(headersToRecord({ a: Buffer.from('x'), b: ['1', Buffer.from('2')], c: undefined })).toEqual({ a: 'x', b: '2' });
    expect(headersToRecord(undefined)).toEqual({});
  });

  it('withDeadline rejects with LogUnavailableError and swallows the late rejection', async () => {
    let rejectLate!: (e: Error) => void;
    const late = new Promise<never>((_, reject) => {
      rejectLate = reject;
    });
    await expect(withDeadline(late, 10, 'slow thing')).rejects.toBeInstanceOf(LogUnavailableError);
    rejectLate(new Error('too late'));
    await new Promise((resolve) => setTimeout(resolve, 10));
  });

  it('unavailable keeps an existing LogUnavailableError and wraps anything else', () => {
    const original = new LogUnavailableError('x');
    expect(unavailable('op', original)).toBe(original);
    const wrapped = unavailable('send', new Error('boom'));
    expect(wrapped.message).toBe('kafka: send: boom');
    expect(wrapped.cause).toBeInstanceOf(Error);
  });

  it('routes kafkajs log entries as structured records', () => {
    const records: Array<Record<string, unknown>> = [];
    const log = kafkajsLogCreator((r) => records.push(r))(logLevel.WARN);
    log({ namespace: 'Producer', level: logLevel.ERROR, label: 'ERROR', log: { timestamp: 't', message: 'boom', logger: 'kafkajs', retryCount: 2 } });
    log({ namespace: 'Connection', level: logLevel.ERROR, label: 'ERROR', log: { timestamp: 't', message: 'Response Produce(key: 0)' } });
    log({ namespace: 'Producer', level: logLevel.WARN, label: 'WARN', log: { timestamp: 't', message: 'Limiting retries for the idempotent producer may invalidate EoS guarantees' } });
    expect(records).toEqual([
      { time: 't', level: 'error', component: 'kafkajs', namespace: 'Producer', msg: 'boom', retryCount: 2 },
      { time: 't', level: 'warn', component: 'kafkajs', namespace: 'Connection', msg: 'Response Produce(key: 0)' },
    ]);
  });
});
