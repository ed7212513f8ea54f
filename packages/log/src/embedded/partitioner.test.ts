import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from './partitioner.ts';

describe('partitioner', () => {
  it('murmur2 matches the vectors in Kafka’s own UtilsTest', () => {
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of cases) expect(murmur2(Buffer.from(key)), key).toBe(hash);
  });

  it('puts every key on the same partition as kafkajs’s DefaultPartitioner', () => {
    const kafkaPartition = Partitioners.DefaultPartitioner();
    for (const n of [1, 3, 7, 12]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
      for (let i = 0; i < 500; i++) {
        // Multi-byte UTF-8 and every tail length (0-3 bytes past a 4-byte block).
        const key = `tenant-${i}-${'é'.repeat(i % 4)}${'x'.repeat(i % 5)}`;
        const expected = kafkaPartition({ topic: 't', partitionMetadata, message: { key, value: null } });
        expect(partitionForKey(key, n), `${key} of ${n}`).toBe(expected);
      }
    }
  });

  it('is stable and spreads keys over all partitions', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 300; i++) {
      const p = partitionForKey(`tenant-${i}`, 3);
      expect(partitionForKey(`tenant-${i}`, 3)).toBe(p);
      counts[p]!++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(60);
  });
});
