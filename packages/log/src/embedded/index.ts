export {
  createEmbeddedLog,
  type ConsumerErrorInfo,
  type CorruptRecordInfo,
  type EmbeddedLog,
  type EmbeddedLogOptions,
  type EmbeddedLogStats,
  type FsyncPolicy,
  type TornTailInfo,
} from './log.ts';
export { partitionForKey } from './partitioner.ts';
