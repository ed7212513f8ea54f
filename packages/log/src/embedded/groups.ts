/**
 * Consumer-group offsets: one JSON file per group, `<dir>/groups/<group>.json`, replaced atomically.
 *
 *   { "version": 1, "group": "loader", "topics": { "telemetry.v2": { "0": 1234, "1": 98 } } }
 *
 * The owning process keeps the authoritative copy in memory and writes it through; a read-only
 * process re-reads the file on every question, since the owner keeps changing it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno, writeFileAtomic } from '@ingest/fsutil';
import { assertName } from './names.ts';

type Offsets = Record<string, Record<string, number>>;

interface GroupFileContent {
  version: 1;
  group: string;
  topics: Offsets;
}

export async function readGroupFile(groupsDir: string, group: string): Promise<Offsets> {
  assertName('group', group);
  let text: string;
  try {
    text = await readFile(join(groupsDir, `${group}.json`), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {};
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<GroupFileContent>;
  const topics: Offsets = {};
  for (const [topic, parts] of Object.entries(parsed.topics ?? {})) {
    topics[topic] = {};
    for (const [p, off] of Object.entries(parts)) {
      if (Number.isSafeInteger(off) && off >= 0) topics[topic][p] = off;
    }
  }
  return topics;
}

/** The writer's view of one group, with coalesced, ordered persistence. */
export class GroupOffsets {
  private version = 0;
  private persisted = 0;
  private inflight: { promise: Promise<void>; covers: number } | null = null;

  private constructor(
    private readonly path: string,
    private readonly group: string,
    private readonly offsets: Offsets,
    private readonly durable: boolean,
  ) {}

  static async load(groupsDir: string, group: string, durable: boolean): Promise<GroupOffsets> {
    const offsets = await readGroupFile(groupsDir, group);
    await mkdir(groupsDir, { recursive: true });
    return new GroupOffsets(join(groupsDir, `${group}.json`), group, offsets, durable);
  }

  get(topic: string, partition: number): number | undefined {
    return this.offsets[topic]?.[String(partition)];
  }

  /** True once the group committed anything on the topic: from then on it is a reader to wait for. */
  consumes(topic: string): boolean {
    return this.offsets[topic] !== undefined;
  }

  /**
   * Sets the offset and resolves once a file containing it is on disk. Concurrent commits share
   * writes: at most one write is in flight and one more is pending, however many callers wait.
   */
  async commit(topic: string, partition: number, offset: number): Promise<void> {
    (this.offsets[topic] ??= {})[String(partition)] = offset;
    this.version++;
    const target = this.version;
    while (this.persisted < target) {
      if (this.inflight !== null) {
        const { promise, covers } = this.inflight;
        try {
          await promise;
        } catch (err) {
          if (covers >= target) throw err;
        }
        continue;
      }
      const covers = this.version;
      const content: GroupFileContent = { version: 1, group: this.group, topics: this.offsets };
      const promise = writeFileAtomic(this.path, `${JSON.stringify(content)}\n`, { durable: this.durable }).then(
        () => {
          this.persisted = Math.max(this.persisted, covers);
          this.inflight = null;
        },
        (err: unknown) => {
          this.inflight = null;
          throw err;
        },
      );
      this.inflight = { promise, covers };
    }
  }
}
