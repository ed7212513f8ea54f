/**
 * The embedded durable log: Kafka's model (topics, partitions, offsets, consumer-group offsets) on
 * the local filesystem, for the deployment with nothing to install.
 *
 *   <dir>/LOCK                                     pid of the process that owns the log
 *   <dir>/topics/<topic>/topic.json                { "version": 1, "partitions": 3 }
 *   <dir>/topics/<topic>/<partition>/<base:020>.log    records, see format.ts
 *   <dir>/topics/<topic>/<partition>/<base:020>.index  sparse index of a sealed segment, see segment.ts
 *   <dir>/topics/<topic>/<partition>/quarantine/       copies of damaged records readers stepped over
 *   <dir>/groups/<group>.json                      committed offsets, see groups.ts
 *
 * One process owns a log directory (enforced by LOCK); others may open it with `readOnly: true`,
 * which never writes, truncates or locks anything.
 */
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  LogUnavailableError,
  type AppendedRange,
  type ConsumerOptions,
  type DurableLog,
  type LogAdmin,
  type LogConsumer,
  type LogHealth,
  type LogMessage,
  type LogProducer,
  type PartitionOffsets,
  type StoredMessage,
} from '../types.ts';
import { EmbeddedConsumer, type ConsumerErrorInfo, type ConsumerHost } from './consumer.ts';
import { MAX_RECORD_BYTES, prepareMessage, type PreparedMessage } from './format.ts';
import { acquireLockFile, fsyncDir, isErrno, LockHeldError, writeFileAtomic } from '@ingest/fsutil';
import { GroupOffsets, readGroupFile } from './groups.ts';
import { assertName } from './names.ts';
import { partitionForKeyBytes } from './partitioner.ts';
import { Partition, type CorruptRecordInfo, type FsyncPolicy, type TornTailInfo } from './partition.ts';
import { TopicState } from './topic.ts';

export type { ConsumerErrorInfo, CorruptRecordInfo, FsyncPolicy, TornTailInfo };

export interface EmbeddedLogOptions {
  dir: string;
  /** Partitions of topics created implicitly (first send, consumer start). Default 3. */
  partitions?: number;
  /**
   * 'always' (default): send resolves after fdatasync, and consumers only see fsync'd records.
   * 'interval': fsync every fsyncIntervalMs. 'never': leave it to the OS.
   */
  fsync?: FsyncPolicy;
  /** Default 1000. */
  fsyncIntervalMs?: number;
  /** Segment size at which a new segment starts. Default 64 MiB, at most 1 GiB. */
  segmentBytes?: number;
  /**
   * Per partition: whole oldest segments are deleted while the partition holds more than this
   * (the active segment is never deleted). Default 1 GiB; Infinity keeps everything.
   */
  retentionBytes?: number;
  /** Open another process's log for inspection: never writes, truncates or locks. */
  readOnly?: boolean;
  /** Sends waiting or in progress, log-wide, before new ones are refused with LogUnavailableError. Default 1024. */
  maxPendingSends?: number;
  /** Encoded bytes of sends waiting or in progress before new ones are refused. Default 64 MiB. */
  maxPendingBytes?: number;
  /** Largest encoded message. Default 1 MiB (Kafka's message.max.bytes). */
  maxMessageBytes?: number;
  /** How often an idle consumer looks for data it was not woken for (another process's appends). Default 250. */
  pollIntervalMs?: number;
  /**
   * Consumer retry backoff: first delay, doubling up to retryMaxMs. Defaults 100 / 30000. A partition
   * whose append failed retries its recovery on the same schedule, capped at 5 s so it is back in
   * service soon after the fault clears.
   */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** A partition's last segment ended in a torn or corrupt record at open (truncated unless read-only). */
  onTornTail?: (info: TornTailInfo) => void;
  /**
   * Recovery or a reader met damaged records with good ones after them: their bytes were copied to
   * `<partition>/quarantine/`, their offsets are skipped, and every later record is still read.
   */
  onCorruptRecord?: (info: CorruptRecordInfo) => void;
  /** A consumer's handler, read or commit failed (it retries after a backoff). */
  onConsumerError?: (err: unknown, info: ConsumerErrorInfo) => void;
  /** Housekeeping failures with no caller to report to (retention unlink, index write). */
  onBackgroundError?: (err: unknown) => void;
}

export interface EmbeddedLogStats {
  /** Partitions whose last segment had a bad tail at open. */
  tornTails: number;
  /** Bytes cut off (or, read-only, that would be) by those. */
  tornBytes: number;
  /** Records lost to damage, stepped over and quarantined (each damaged stretch counted once). */
  corruptRecords: number;
  /** Sends refused because the pending-send budget was exhausted. */
  rejectedSends: number;
  /** Consumers that started outside the retained range and were moved into it. */
  offsetResets: number;
  /** Times retention kept a segment over the size limit because a group had not read it yet. */
  retentionHeld: number;
}

export interface EmbeddedLog extends DurableLog {
  readonly kind: 'embedded';
  readonly dir: string;
  readonly readOnly: boolean;
  /**
   * Resolves when the log is open and recovered; rejects with the reason it could not open (e.g.
   * LogUnavailableError: the directory is locked by another process). Every operation waits for it
   * anyway; call it to fail fast at startup.
   */
  ready(): Promise<void>;
  stats(): EmbeddedLogStats;
  /** Partitions refusing appends after a failed write or fsync, until their recovery succeeds. */
  health(): LogHealth;
}

const MIB = 1024 * 1024;
const MAX_SEGMENT_BYTES = 1024 * MIB;
/** Cap on the delay between recovery attempts of a failed partition (see retryMaxMs). */
const RECOVERY_MAX_MS = 5000;
/** Admin reads are for humans and tools; this keeps one call from materialising gigabytes. */
const ADMIN_READ_MAX_BYTES = 16 * MIB;

interface Settings {
  dir: string;
  partitions: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  segmentBytes: number;
  retentionBytes: number;
  readOnly: boolean;
  maxPendingSends: number;
  maxPendingBytes: number;
  maxMessageBytes: number;
  pollIntervalMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
}

function positiveInt(name: string, v: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new RangeError(`${name} must be an integer in [1, ${max}], got ${n}`);
  return n;
}

function settingsFrom(opts: EmbeddedLogOptions): Settings {
  if (typeof opts.dir !== 'string' || opts.dir === '') throw new TypeError('dir is required');
  const fsync = opts.fsync ?? 'always';
  if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') throw new RangeError(`unknown fsync policy ${String(fsync)}`);
  const retentionBytes = opts.retentionBytes ?? 1024 * MIB;
  if (!(retentionBytes > 0)) throw new RangeError('retentionBytes must be > 0');
  return {
    dir: resolve(opts.dir),
    partitions: positiveInt('partitions', opts.partitions, 3, 10_000),
    fsync,
    fsyncIntervalMs: positiveInt('fsyncIntervalMs', opts.fsyncIntervalMs, 1000),
    segmentBytes: positiveInt('segmentBytes', opts.segmentBytes, 64 * MIB, MAX_SEGMENT_BYTES),
    retentionBytes,
    readOnly: opts.readOnly ?? false,
    maxPendingSends: positiveInt('maxPendingSends', opts.maxPendingSends, 1024),
    maxPendingBytes: positiveInt('maxPendingBytes', opts.maxPendingBytes, 64 * MIB),
    maxMessageBytes: positiveInt('maxMessageBytes', opts.maxMessageBytes, MIB, MAX_RECORD_BYTES),
    pollIntervalMs: positiveInt('pollIntervalMs', opts.pollIntervalMs, 250),
    retryInitialMs: positiveInt('retryInitialMs', opts.retryInitialMs, 100),
    retryMaxMs: positiveInt('retryMaxMs', opts.retryMaxMs, 30_000),
  };
}

/**
 * Opens (creating if needed) an embedded log. Synchronous like the Kafka backend's factory, so the
 * caller picks a backend with one expression; opening and recovery start at once in the background
 * (every partition's last segment is scanned and a torn tail truncated, so a crash costs a restart,
 * never a crash loop) and every operation waits for them. Options are validated here, synchronously.
 */
export function createEmbeddedLog(opts: EmbeddedLogOptions): EmbeddedLog {
  return new EmbeddedLogImpl(settingsFrom(opts), opts);
}

const noop = (): void => undefined;

class EmbeddedLogImpl implements EmbeddedLog, ConsumerHost {
  readonly kind = 'embedded' as const;
  readonly dir: string;
  readonly readOnly: boolean;
  readonly pollIntervalMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;

  private readonly topics = new Map<string, TopicState>();
  private readonly opening = new Map<string, Promise<TopicState | null>>();
  private readonly groups = new Map<string, Promise<GroupOffsets>>();
  /** Groups loaded so far, readable synchronously by retention. */
  private readonly loadedGroups = new Map<string, GroupOffsets>();
  /** Offsets of consumers on a read-only log, which must not write the group files. */
  private readonly memoryCommits = new Map<string, number>();
  private readonly claims = new Set<string>();
  private readonly producers = new Set<EmbeddedProducer>();
  private readonly consumers = new Set<EmbeddedConsumer>();
  private readonly admins = new Set<EmbeddedAdmin>();
  private pendingSends = 0;
  private pendingBytes = 0;
  private flusher: NodeJS.Timeout | null = null;
  private releaseLock: (() => Promise<void>) | null = null;
  private closed = false;
  /** Set when close() starts: no new clients, while existing ones wind down. */
  private shuttingDown = false;
  private closing: Promise<void> | null = null;
  private readonly counters: EmbeddedLogStats = { tornTails: 0, tornBytes: 0, corruptRecords: 0, rejectedSends: 0, offsetResets: 0, retentionHeld: 0 };
  private readonly opened: Promise<void>;

  constructor(
    private readonly s: Settings,
    private readonly hooks: EmbeddedLogOptions,
  ) {
    this.dir = s.dir;
    this.readOnly = s.readOnly;
    this.pollIntervalMs = s.pollIntervalMs;
    this.retryInitialMs = s.retryInitialMs;
    this.retryMaxMs = s.retryMaxMs;
    this.opened = this.open();
    // The failure reaches callers through ready() and every operation; this only keeps an open
    // failure nobody asked about yet from being an unhandled rejection.
    void this.opened.catch(noop);
  }

  ready(): Promise<void> {
    return this.opened;
  }

  private get topicsDir(): string {
    return join(this.dir, 'topics');
  }

  private get groupsDir(): string {
    return join(this.dir, 'groups');
  }

  private async open(): Promise<void> {
    if (this.readOnly) {
      try {
        await stat(this.dir);
      } catch (err) {
        throw new LogUnavailableError(`no embedded log at ${this.dir}`, { cause: err });
      }
      return;
    }
    await mkdir(this.topicsDir, { recursive: true });
    await mkdir(this.groupsDir, { recursive: true });
    this.releaseLock = await lockDir(this.dir);
    try {
      await removeTempFiles(this.groupsDir);
      // Every group that ever committed protects what it has not read yet, even before its consumer
      // is created again in this process.
      for (const f of await readdir(this.groupsDir)) {
        const name = f.endsWith('.json') ? f.slice(0, -5) : '';
        if (isValidName(name)) await this.group(name).catch(() => undefined);
      }
      for (const name of await readdir(this.topicsDir)) {
        if (!isValidName(name)) continue;
        await removeTempFiles(join(this.topicsDir, name));
        const t = await this.loadTopic(name, undefined);
        if (t !== null) this.topics.set(name, t);
      }
    } catch (err) {
      await Promise.allSettled([...this.topics.values()].flatMap((t) => t.partitions.map((p) => p.close())));
      this.topics.clear();
      await this.releaseLock();
      this.releaseLock = null;
      throw err;
    }
    if (this.s.fsync === 'interval') {
      this.flusher = setInterval(() => {
        for (const t of this.topics.values()) for (const p of t.partitions) p.requestFlush();
      }, this.s.fsyncIntervalMs);
      this.flusher.unref();
    }
  }

  stats(): EmbeddedLogStats {
    return { ...this.counters };
  }

  health(): LogHealth {
    const failing = [];
    for (const t of this.topics.values()) {
      for (const p of t.partitions) {
        const f = p.health();
        if (f !== null) failing.push({ topic: f.topic, partition: f.partition, error: f.error, since: f.since });
      }
    }
    return { ok: failing.length === 0, failing };
  }

  private assertOpen(): void {
    if (this.closed) throw new LogUnavailableError('the embedded log is closed');
  }

  private assertAcceptingClients(): void {
    if (this.shuttingDown) throw new LogUnavailableError('the embedded log is closed');
  }

  /**
   * The open topic, loading it from disk on first use. With `createPartitions` (writer only) a
   * missing topic is created with that many partitions.
   */
  async topic(name: string, createPartitions?: number): Promise<TopicState | null> {
    assertName('topic', name);
    await this.opened;
    for (;;) {
      this.assertOpen();
      const open = this.topics.get(name);
      if (open !== undefined) return open;
      const inflight = this.opening.get(name);
      if (inflight !== undefined) {
        const t = await inflight;
        // That load only looked; we may create. Go round so exactly one load runs at a time.
        if (t !== null || createPartitions === undefined) return t;
        continue;
      }
      const load = this.loadTopic(name, createPartitions)
        .then((t) => {
          if (t !== null) this.topics.set(name, t);
          return t;
        })
        .finally(() => this.opening.delete(name));
      this.opening.set(name, load);
      return load;
    }
  }

  /** Opens an existing topic (recovering its partitions) or creates one. */
  private async loadTopic(name: string, createPartitions: number | undefined): Promise<TopicState | null> {
    const tdir = join(this.topicsDir, name);
    let count = await readTopicPartitions(tdir);
    const creating = count === null;
    if (count === null) {
      if (this.readOnly || createPartitions === undefined) return null;
      count = positiveInt('partitions', createPartitions, 3, 10_000);
      await mkdir(tdir, { recursive: true });
      if (this.s.fsync !== 'never') await fsyncDir(this.topicsDir);
    }
    const topic = new TopicState(name, []);
    try {
      for (let p = 0; p < count; p++) {
        topic.partitions.push(
          await Partition.open({
            topic: name,
            partition: p,
            dir: join(tdir, String(p)),
            readOnly: this.readOnly,
            fsync: this.s.fsync,
            segmentBytes: this.s.segmentBytes,
            retentionBytes: this.s.retentionBytes,
            protectedOffset: () => this.protectedOffset(name, p),
            onRetentionHeld: () => {
              this.counters.retentionHeld++;
            },
            onTornTail: (info) => {
              this.counters.tornTails++;
              this.counters.tornBytes += info.truncatedBytes;
              this.hooks.onTornTail?.(info);
            },
            onCorruptRecord: (info) => {
              this.counters.corruptRecords += info.records;
              this.hooks.onCorruptRecord?.(info);
            },
            onAppend: () => topic.notify(),
            onBackgroundError: (err) => this.hooks.onBackgroundError?.(err),
            recoveryInitialMs: this.s.retryInitialMs,
            recoveryMaxMs: Math.min(this.s.retryMaxMs, RECOVERY_MAX_MS),
          }),
        );
      }
      if (creating) {
        // Metadata last: a topic dir without topic.json is an unfinished creation, finished next time.
        if (this.s.fsync !== 'never') await fsyncDir(tdir);
        await writeFileAtomic(join(tdir, 'topic.json'), `${JSON.stringify({ version: 1, partitions: count })}\n`, { durable: this.s.fsync !== 'never' });
      }
    } catch (err) {
      await Promise.allSettled(topic.partitions.map((p) => p.close()));
      throw err;
    }
    return topic;
  }

  async send(topicName: string, messages: LogMessage[]): Promise<AppendedRange[]> {
    this.assertOpen();
    if (this.readOnly) throw new LogUnavailableError('the embedded log is open read-only');
    if (!Array.isArray(messages)) throw new TypeError('messages must be an array');
    if (messages.length === 0) return [];
    assertName('topic', topicName);
    const now = Date.now();
    const prepared = messages.map((m) => prepareMessage(m, this.s.maxMessageBytes, now));
    let bytes = 0;
    for (const m of prepared) bytes += m.size;
    if (bytes > this.s.maxPendingBytes) {
      // Never fits, however long the caller waits: not a retryable unavailability.
      throw new RangeError(`one send of ${bytes} bytes exceeds maxPendingBytes ${this.s.maxPendingBytes}; split it`);
    }
    if (this.pendingSends >= this.s.maxPendingSends || this.pendingBytes + bytes > this.s.maxPendingBytes) {
      this.counters.rejectedSends++;
      throw new LogUnavailableError(
        `embedded log backlog full (${this.pendingSends} sends, ${this.pendingBytes} bytes pending); retry later`,
      );
    }
    this.pendingSends++;
    this.pendingBytes += bytes;
    try {
      let topic: TopicState;
      try {
        await this.opened;
        topic = (await this.topic(topicName, this.s.partitions))!;
      } catch (err) {
        // Whatever kept the log from opening or the topic from being created (lock, EACCES,
        // ENOSPC) is, to the caller, the log being unavailable: shed and retry later.
        throw err instanceof LogUnavailableError ? err : new LogUnavailableError(`embedded log cannot take messages for ${topicName}`, { cause: err });
      }
      const byPartition = new Map<number, PreparedMessage[]>();
      const n = topic.partitions.length;
      for (const m of prepared) {
        const p = partitionForKeyBytes(m.keyBytes, n);
        const list = byPartition.get(p);
        if (list === undefined) byPartition.set(p, [m]);
        else list.push(m);
      }
      const parts = [...byPartition.keys()].sort((a, b) => a - b);
      // allSettled: the budget is released only when no partition still holds this send's messages.
      const results = await Promise.allSettled(parts.map((p) => topic.partitions[p]!.append(byPartition.get(p)!)));
      const ranges: AppendedRange[] = [];
      for (let i = 0; i < results.length; i++) {
        const r = results[i]!;
        if (r.status === 'rejected') {
          throw r.reason instanceof LogUnavailableError ? r.reason : new LogUnavailableError('append failed', { cause: r.reason });
        }
        ranges.push({ partition: parts[i]!, ...r.value });
      }
      return ranges;
    } finally {
      this.pendingSends--;
      this.pendingBytes -= bytes;
    }
  }

  async openTopic(topic: string): Promise<TopicState | null> {
    return this.topic(topic, this.readOnly ? undefined : this.s.partitions);
  }

  /** Lowest offset any group reading this topic has yet to read; undefined when no group reads it. */
  private protectedOffset(topic: string, partition: number): number | undefined {
    let min: number | undefined;
    for (const g of this.loadedGroups.values()) {
      if (!g.consumes(topic)) continue;
      const off = g.get(topic, partition) ?? 0;
      min = min === undefined ? off : Math.min(min, off);
    }
    return min;
  }

  private group(name: string): Promise<GroupOffsets> {
    assertName('group', name);
    let g = this.groups.get(name);
    if (g === undefined) {
      g = GroupOffsets.load(this.groupsDir, name, this.s.fsync !== 'never');
      this.groups.set(name, g);
      void g.then((loaded) => this.loadedGroups.set(name, loaded), () => undefined);
      // A failed load (unreadable file) is retried by the next caller rather than cached.
      void g.catch(() => this.groups.delete(name));
    }
    return g;
  }

  async committedOffset(group: string, topic: string, partition: number): Promise<number | undefined> {
    await this.opened;
    if (this.readOnly) {
      return this.memoryCommits.get(commitKey(group, topic, partition)) ?? (await readGroupFile(this.groupsDir, group))[topic]?.[String(partition)];
    }
    return (await this.group(group)).get(topic, partition);
  }

  async commit(group: string, topic: string, partition: number, offset: number): Promise<void> {
    this.assertOpen();
    await this.opened;
    if (this.readOnly) {
      assertName('group', group);
      this.memoryCommits.set(commitKey(group, topic, partition), offset);
      return;
    }
    await (await this.group(group)).commit(topic, partition, offset);
  }

  async committedAll(group: string, topicName: string): Promise<Array<{ partition: number; offset: number }>> {
    const topic = await this.topic(topicName);
    if (topic === null) return [];
    // Read-only: the owner keeps writing the file, so read it fresh every time.
    const lookup: (p: number) => number | undefined = this.readOnly
      ? ((fromDisk) => (p) => fromDisk[String(p)])((await readGroupFile(this.groupsDir, group))[topicName] ?? {})
      : ((g) => (p) => g.get(topicName, p))(await this.group(group));
    return topic.partitions.map((p) => ({ partition: p.id, offset: lookup(p.id) ?? -1 }));
  }

  claim(group: string, topic: string): () => void {
    const key = `${group}\u0000${topic}`;
    if (this.claims.has(key)) throw new Error(`group ${group} already has a running consumer on ${topic} in this log`);
    this.claims.add(key);
    return () => this.claims.delete(key);
  }

  onError(err: unknown, info: ConsumerErrorInfo): void {
    this.hooks.onConsumerError?.(err, info);
  }

  noteOffsetReset(): void {
    this.counters.offsetResets++;
  }

  async partitionOffsets(topicName: string): Promise<PartitionOffsets[]> {
    const topic = await this.topic(topicName);
    if (topic === null) return [];
    return Promise.all(topic.partitions.map(async (p) => ({ partition: p.id, ...(await p.offsets()) })));
  }

  async read(topicName: string, partition: number, offset: number, maxMessages: number): Promise<StoredMessage[]> {
    if (!Number.isSafeInteger(partition) || partition < 0) throw new RangeError(`partition must be a non-negative integer, got ${partition}`);
    const topic = await this.topic(topicName);
    if (topic === null) throw new RangeError(`unknown topic ${topicName}`);
    const p = topic.partitions[partition];
    if (p === undefined) throw new RangeError(`topic ${topicName} has no partition ${partition}`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
    if (!Number.isSafeInteger(maxMessages) || maxMessages < 1) throw new RangeError('maxMessages must be a positive integer');
    return (await p.read(offset, maxMessages, ADMIN_READ_MAX_BYTES, true)).messages;
  }

  producer(): LogProducer {
    this.assertAcceptingClients();
    const p = new EmbeddedProducer(this, () => this.producers.delete(p));
    this.producers.add(p);
    return p;
  }

  consumer(opts: ConsumerOptions): LogConsumer {
    this.assertAcceptingClients();
    assertName('group', opts.group);
    assertName('topic', opts.topic);
    const c = new EmbeddedConsumer(this, opts);
    this.consumers.add(c);
    return c;
  }

  admin(): LogAdmin {
    this.assertAcceptingClients();
    const a = new EmbeddedAdmin(this);
    this.admins.add(a);
    return a;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.shuttingDown = true;
    // A log that never opened has nothing to close (open() cleaned up after itself).
    if (!(await this.opened.then(() => true, () => false))) {
      this.closed = true;
      return;
    }
    // Consumers first (their handlers may still produce), then producers (in-flight sends finish),
    // then the files.
    if (this.flusher !== null) clearInterval(this.flusher);
    this.flusher = null;
    await Promise.allSettled([...this.consumers].map((c) => c.close()));
    await Promise.allSettled([...this.producers].map((p) => p.close()));
    this.closed = true;
    for (const a of this.admins) a.markClosed();
    await Promise.allSettled([...this.opening.values()]);
    const results = await Promise.allSettled([...this.topics.values()].flatMap((t) => t.partitions.map((p) => p.close())));
    await this.releaseLock?.();
    this.releaseLock = null;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw new LogUnavailableError('closing the embedded log failed', { cause: failed.reason });
  }
}

class EmbeddedProducer implements LogProducer {
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly log: EmbeddedLogImpl,
    private readonly onClosed: () => void,
  ) {}

  send(topic: string, messages: LogMessage[]): Promise<AppendedRange[]> {
    if (this.closed) return Promise.reject(new LogUnavailableError('the producer is closed'));
    const p = this.log.send(topic, messages);
    this.inflight.add(p);
    const settle = (): void => {
      this.inflight.delete(p);
    };
    void p.then(settle, settle);
    return p;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await Promise.allSettled([...this.inflight]);
      this.onClosed();
    })();
    return this.closing;
  }
}

class EmbeddedAdmin implements LogAdmin {
  private closed = false;

  constructor(private readonly log: EmbeddedLogImpl) {}

  markClosed(): void {
    this.closed = true;
  }

  private check(): void {
    if (this.closed) throw new LogUnavailableError('the admin client is closed');
  }

  async ensureTopic(topic: string, partitions: number): Promise<void> {
    this.check();
    if (this.log.readOnly) {
      if ((await this.log.topic(topic)) === null) throw new LogUnavailableError(`topic ${topic} does not exist and the log is read-only`);
      return;
    }
    await this.log.topic(topic, partitions);
  }

  async partitions(topic: string): Promise<PartitionOffsets[]> {
    this.check();
    return this.log.partitionOffsets(topic);
  }

  async committed(group: string, topic: string): Promise<Array<{ partition: number; offset: number }>> {
    this.check();
    return this.log.committedAll(group, topic);
  }

  async read(topic: string, partition: number, offset: number, maxMessages: number): Promise<StoredMessage[]> {
    this.check();
    return this.log.read(topic, partition, offset, maxMessages);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function commitKey(group: string, topic: string, partition: number): string {
  return `${group}\u0000${topic}\u0000${partition}`;
}

function isValidName(name: string): boolean {
  try {
    assertName('topic', name);
    return true;
  } catch {
    return false;
  }
}

/** Partition count from topic.json; null when the topic was never (completely) created. */
async function readTopicPartitions(tdir: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(join(tdir, 'topic.json'), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
    throw err;
  }
  const n = (JSON.parse(text) as { partitions?: unknown }).partitions;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new Error(`${tdir}/topic.json has no valid partition count`);
  return n;
}

/**
 * Takes `<dir>/LOCK` so two processes never append to (or truncate) the same log; a dead owner's
 * lock is taken over, so a crash never needs a human to delete a file before the next start.
 */
async function lockDir(dir: string): Promise<() => Promise<void>> {
  try {
    const lock = await acquireLockFile(join(dir, 'LOCK'));
    return () => lock.release();
  } catch (err) {
    if (!(err instanceof LockHeldError)) throw err;
    throw new LogUnavailableError(
      err.holder === process.pid
        ? `embedded log ${dir} is already open for writing in this process`
        : `embedded log ${dir} is locked by running process ${err.holder}; open it with readOnly: true to inspect it`,
      { cause: err },
    );
  }
}

/** Leftovers of atomic writes interrupted by a crash. */
async function removeTempFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.endsWith('.tmp')) await unlink(join(dir, n)).catch(noop);
}
