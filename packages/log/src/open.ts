import type { DurableLog } from './types.ts';
import { createEmbeddedLog, type CorruptRecordInfo } from './embedded/index.ts';
import { createKafkaLog, type KafkaLogOptions } from './kafka/index.ts';

export interface OpenLogOptions {
  /** Kafka when set, the embedded log otherwise. */
  kafkaBrokers?: string[] | undefined;
  /** Embedded: where the log lives. */
  dir: string;
  partitions: number;
  fsync: 'always' | 'interval' | 'never';
  /** Embedded: per-partition size limit; segments a consumer group has not read are kept anyway. */
  retentionBytes?: number;
  clientId: string;
  /** Embedded: open without writing anything (operator tools beside a running service). */
  readOnly?: boolean;
  onTornTail?: (info: { topic: string; partition: number; truncatedBytes: number }) => void;
  /** Embedded: damaged records stepped over (quarantined, their offsets skipped); see CorruptRecordInfo. */
  onCorruptRecord?: (info: CorruptRecordInfo) => void;
  /** Kafka: topic creation settings and compression (library defaults when absent). */
  kafka?: Pick<KafkaLogOptions, 'replicationFactor' | 'minInsyncReplicas' | 'retentionMs' | 'compression'>;
}

/** The one place that chooses the backend: configuration, never a code fork. */
export function openLog(o: OpenLogOptions): DurableLog {
  if (o.kafkaBrokers && o.kafkaBrokers.length > 0) return createKafkaLog({ ...o.kafka, brokers: o.kafkaBrokers, clientId: o.clientId });
  return createEmbeddedLog({
    dir: o.dir,
    partitions: o.partitions,
    fsync: o.fsync,
    ...(o.retentionBytes !== undefined ? { retentionBytes: o.retentionBytes } : {}),
    ...(o.readOnly ? { readOnly: true } : {}),
    ...(o.onTornTail ? { onTornTail: o.onTornTail } : {}),
    ...(o.onCorruptRecord ? { onCorruptRecord: o.onCorruptRecord } : {}),
  });
}
