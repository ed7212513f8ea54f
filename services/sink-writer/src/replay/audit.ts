import { mkdir, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { LogProducer } from '@ingest/log';

export type AuditAction = 'replay' | 'promote' | 'drop';

/** One line of the audit log. A replay writes two (start, end) with the same id, so a crash shows. */
export interface AuditRecord {
  at: string;
  action: AuditAction;
  phase: 'start' | 'end';
  /** Replay run id / job id, or the promote/drop request id. */
  id: string;
  /** Who ran the command, as the CLI reports it ($USER / os.userInfo()). */
  who: string;
  /** Address the request came from and the host that executed it. */
  from: string;
  host: string;
  args: string[];
  plan?: unknown;
  result?: unknown;
}

export interface AuditLogOptions {
  /** JSON-lines file, appended to and fsync'd per record. */
  file: string;
  /** Kafka mode: also published to this topic (the file stays the local record). */
  topic?: { name: string; producer: LogProducer; ensure: () => Promise<void> };
  onError?: (where: 'file' | 'topic', err: unknown) => void;
}

/**
 * Append-only audit trail for shadow operations. A failed audit write is reported, never fatal:
 * the operation's own result is already durable (ClickHouse, replay_runs) and must not be lost
 * because a disk or topic hiccupped.
 */
export class AuditLog {
  private ensured: Promise<void> | undefined;

  constructor(private readonly opts: AuditLogOptions) {}

  get file(): string {
    return this.opts.file;
  }

  get topic(): string | undefined {
    return this.opts.topic?.name;
  }

  async append(rec: Omit<AuditRecord, 'at' | 'host'>): Promise<{ file: boolean; topic?: boolean }> {
    const full: AuditRecord = { at: new Date().toISOString(), host: hostname(), ...rec };
    const line = JSON.stringify(full) + '\n';
    const out: { file: boolean; topic?: boolean } = { file: false };
    try {
      await mkdir(path.dirname(this.opts.file), { recursive: true });
      // One write to an O_APPEND file: concurrent appenders can't interleave inside a line.
      const fh = await open(this.opts.file, 'a');
      try {
        await fh.write(line);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      out.file = true;
    } catch (e) {
      this.opts.onError?.('file', e);
    }
    const t = this.opts.topic;
    if (t) {
      out.topic = false;
      try {
        this.ensured ??= t.ensure().catch((e: unknown) => {
          this.ensured = undefined;
          throw e;
        });
        await this.ensured;
        await t.producer.send(t.name, [{ key: rec.action, value: Buffer.from(line), headers: { 'x-ingest-audit': rec.action } }]);
        out.topic = true;
      } catch (e) {
        this.opts.onError?.('topic', e);
      }
    }
    return out;
  }
}
