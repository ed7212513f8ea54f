import { describe, expect, it } from 'vitest';
import { topicMismatches } from './admin.ts';
import { chunkBySize, estimateRecordBytes, isTooLarge, requestBudget } from './limits.ts';
import { mergeRanges } from './producer.ts';
import { LEADER_MOVING, isTopicNotReady, retryWhileTopicNotReady } from './util.ts';

const protocolError = (type: string): Error => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type });

describe('produce sizing', () => {
  it('estimates a record with its key, value, headers and worst-case varints', () => {
    const bare = estimateRecordBytes({ key: 'acme', value: Buffer.alloc(100) });
    expect(bare).toBe(36 + 4 + 100);
    expect(estimateRecordBytes({ key: 'acme', value: Buffer.alloc(100), headers: { tenant: 'acme' } })).toBe(bare + 10 + 6 + 4);
    // UTF-8 bytes, not string length.
    expect(estimateRecordBytes({ key: 'é', value: Buffer.alloc(0) })).toBe(36 + 2);
  });

  it('leaves headroom for the batch header, log overhead and gzip growth', () => {
    expect(requestBudget(262_144)).toBe(262_144 - 1024 - 263);
    expect(requestBudget(1_048_588)).toBeLessThan(1_048_588 - 1024);
    expect(requestBudget(100)).toBe(1);
  });

  it('cuts sizes into runs within the budget, an oversized record alone', () => {
    expect(chunkBySize([40, 40, 40, 40, 40], 100)).toEqual([
      [0, 2],
      [2, 4],
      [4, 5],
    ]);
    expect(chunkBySize([10, 500, 10, 10], 100)).toEqual([
      [0, 1],
      [1, 2],
      [2, 4],
    ]);
    expect(chunkBySize([40, 40, 40, 40, 40], 100, 2, 1)).toEqual([[2, 4]]);
    expect(chunkBySize([], 100)).toEqual([]);
  });

  it('finds MESSAGE_TOO_LARGE however kafkajs wrapped it', () => {
    expect(isTooLarge(protocolError('MESSAGE_TOO_LARGE'))).toBe(true);
    expect(isTooLarge(protocolError('RECORD_LIST_TOO_LARGE'))).toBe(true);
    expect(isTooLarge(Object.assign(new Error('retries exceeded'), { cause: protocolError('MESSAGE_TOO_LARGE') }))).toBe(true);
    expect(isTooLarge(Object.assign(new Error('aggregate'), { errors: [protocolError('MESSAGE_TOO_LARGE')] }))).toBe(true);
    expect(isTooLarge(protocolError('NOT_LEADER_FOR_PARTITION'))).toBe(false);
    expect(isTooLarge(new Error('MESSAGE_TOO_LARGE'))).toBe(false);
    expect(isTooLarge(undefined)).toBe(false);
  });

  it('joins adjacent runs of a partition and keeps gaps apart', () => {
    expect(
      mergeRanges([
        { partition: 1, firstOffset: 10, lastOffset: 19 },
        { partition: 0, firstOffset: 5, lastOffset: 9 },
        { partition: 1, firstOffset: 20, lastOffset: 24 },
        { partition: 1, firstOffset: 30, lastOffset: 31 },
      ]),
    ).toEqual([
      { partition: 0, firstOffset: 5, lastOffset: 9 },
      { partition: 1, firstOffset: 10, lastOffset: 24 },
      { partition: 1, firstOffset: 30, lastOffset: 31 },
    ]);
  });
});

describe('topic readiness retry', () => {
  const fast = { attempts: 5, minMs: 1, maxMs: 4 };

  it('retries UNKNOWN_TOPIC_OR_PARTITION and LEADER_NOT_AVAILABLE, then succeeds', async () => {
    const errors = [protocolError('UNKNOWN_TOPIC_OR_PARTITION'), Object.assign(new Error('retries'), { cause: protocolError('LEADER_NOT_AVAILABLE') })];
    const retries: number[] = [];
    let calls = 0;
    const got = await retryWhileTopicNotReady(
      async () => {
        calls++;
        const err = errors.shift();
        if (err) throw err;
        return 'ready';
      },
      {
        ...fast,
        onRetry: (attempt, waitMs) => {
          retries.push(attempt);
          expect(waitMs).toBeLessThanOrEqual(4);
        },
      },
    );
    expect(got).toBe('ready');
    expect(calls).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it('gives up after the bounded number of attempts with the last error', async () => {
    let calls = 0;
    const err = protocolError('UNKNOWN_TOPIC_OR_PARTITION');
    await expect(
      retryWhileTopicNotReady(async () => {
        calls++;
        throw err;
      }, fast),
    ).rejects.toBe(err);
    expect(calls).toBe(5);
  });

  it('with LEADER_MOVING, retries a leader between brokers but fails at once on a missing topic', async () => {
    const moving = { ...fast, retryable: (e: unknown) => isTopicNotReady(e, LEADER_MOVING) };
    let calls = 0;
    const got = await retryWhileTopicNotReady(async () => {
      if (++calls === 1) throw protocolError('NOT_LEADER_FOR_PARTITION');
      return 'offsets';
    }, moving);
    expect(got).toBe('offsets');
    expect(calls).toBe(2);
    const missing = protocolError('UNKNOWN_TOPIC_OR_PARTITION');
    let missingCalls = 0;
    await expect(
      retryWhileTopicNotReady(async () => {
        missingCalls++;
        throw missing;
      }, moving),
    ).rejects.toBe(missing);
    expect(missingCalls).toBe(1);
  });

  it('does not retry anything else', async () => {
    let calls = 0;
    const err = protocolError('INVALID_REPLICATION_FACTOR');
    await expect(
      retryWhileTopicNotReady(async () => {
        calls++;
        throw err;
      }, fast),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });

  it('counts kafkajs giving up on topic leaders as not ready', () => {
    expect(isTopicNotReady(Object.assign(new Error('Timed out while waiting for topic leaders'), { name: 'KafkaJSTimeout' }))).toBe(true);
    expect(isTopicNotReady(Object.assign(new Error('Request timed out'), { name: 'KafkaJSTimeout' }))).toBe(false);
  });
});

describe('topicMismatches', () => {
  const want = { partitions: 3, replicationFactor: 3, configs: new Map([['min.insync.replicas', '2'], ['retention.ms', '604800000']]) };

  it('is empty for a topic as configured, or with more partitions', () => {
    const have = { partitions: 6, replicationFactor: 3, configs: new Map([['min.insync.replicas', '2'], ['retention.ms', '604800000'], ['max.message.bytes', '1048588']]) };
    expect(topicMismatches('t', want, have)).toEqual([]);
  });

  it('names each differing key with expected and actual', () => {
    const have = { partitions: 1, replicationFactor: 1, configs: new Map([['min.insync.replicas', '1']]) };
    expect(topicMismatches('t', want, have)).toEqual([
      { topic: 't', key: 'partitions', expected: '>= 3', actual: '1' },
      { topic: 't', key: 'replication.factor', expected: '3', actual: '1' },
      { topic: 't', key: 'min.insync.replicas', expected: '2', actual: '1' },
      { topic: 't', key: 'retention.ms', expected: '604800000', actual: '(unset)' },
    ]);
  });

  it('checks nothing left to the broker default', () => {
    const have = { partitions: 3, replicationFactor: 1, configs: new Map<string, string>() };
    expect(topicMismatches('t', { partitions: 3, replicationFactor: undefined, configs: new Map() }, have)).toEqual([]);
  });
});
