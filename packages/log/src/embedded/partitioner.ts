/**
 * Key → partition, bit-for-bit the same as Kafka's default partitioner (murmur2 of the UTF-8 key,
 * sign bit masked, mod the partition count; kafkajs's DefaultPartitioner does the same). A tenant
 * therefore lands on the same partition number in the embedded log and on Kafka, so runbooks and
 * dashboards that talk about "tenant X's partition" mean the same thing in both deployments.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit int. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4]! & 0xff) | ((data[i4 + 1]! & 0xff) << 8) | ((data[i4 + 2]! & 0xff) << 16) | ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // The tail bytes, as Kafka's fall-through switch does them (noFallthroughCasesInSwitch is on).
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= (data[tail + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[tail + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[tail]! & 0xff;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Partition for a key given as UTF-8 bytes. */
export function partitionForKeyBytes(keyBytes: Uint8Array, partitions: number): number {
  return (murmur2(keyBytes) & 0x7fffffff) % partitions;
}

export function partitionForKey(key: string, partitions: number): number {
  return partitionForKeyBytes(Buffer.from(key, 'utf8'), partitions);
}
