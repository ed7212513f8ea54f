import type { FastifyInstance } from 'fastify';
import { ingestError, type DeadLetter } from '@ingest/contracts';
import type { LogAdmin } from '@ingest/log';
import { parseQueryTime, QUERY_DEFAULT_LIMIT, QUERY_MAX_LIMIT } from '@ingest/storage';

/** Dead-letter messages one request reads at most, matching or not: a list is a bounded scan that resumes with `next`. */
export const DLQ_SCAN_MAX = 100_000;
/** Messages read from the log per call. */
const READ_CHUNK = 1000;

export interface DlqItem extends DeadLetter {
  partition: number;
  offset: number;
}

export interface DlqPage {
  topic: string;
  deadLetters: DlqItem[];
  /** Where to resume (per partition, the next offset to read); null when the topic was read to its end. */
  next: string | null;
  scanned: number;
}

const bad = (param: string, why: string) => ingestError('INGEST_ERR_INVALID_PARAMETER', [param, why]);

function decodePositions(raw: string): Record<string, number> {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) return v as Record<string, number>;
  } catch {
    // refused below
  }
  throw bad('cursor', 'not a cursor this service issued; pass the "next" value of the previous page unchanged');
}

function parseLetter(value: Buffer): DeadLetter | undefined {
  try {
    const v = JSON.parse(value.toString('utf8')) as Partial<DeadLetter>;
    if (typeof v.tenant === 'string' && typeof v.code === 'string') return { tenant: v.tenant, index: Number(v.index ?? -1), code: v.code, message: String(v.message ?? ''), receivedAt: Number(v.receivedAt ?? 0), raw: String(v.raw ?? '') };
  } catch {
    // not a dead letter of ours: skipped
  }
  return undefined;
}

/**
 * GET /admin/v1/dlq: rejected entries with their reason code, time and tenant, filtered by
 * `tenant`, `reason` (an INGEST_ERR_ code) and `from`/`to` (the time the entry was received), in
 * log order. Operator-only (under /admin: the internal token), so it may span tenants.
 */
export function registerDlqRoutes(app: FastifyInstance, deps: { admin: LogAdmin; topic: string }): void {
  app.get('/admin/v1/dlq', async (req): Promise<DlqPage> => {
    const q = req.query as Record<string, unknown>;
    const str = (k: string) => (typeof q[k] === 'string' && q[k] !== '' ? (q[k] as string) : undefined);
    const now = Date.now();
    const tenant = str('tenant');
    const reason = str('reason');
    const fromMs = str('from') !== undefined ? parseQueryTime(str('from') as string, now, 'from') : undefined;
    const toMs = str('to') !== undefined ? parseQueryTime(str('to') as string, now, 'to') : undefined;
    const limitRaw = str('limit');
    const limit = limitRaw === undefined ? QUERY_DEFAULT_LIMIT : /^\d{1,6}$/.test(limitRaw) ? Number(limitRaw) : NaN;
    if (!(limit >= 1 && limit <= QUERY_MAX_LIMIT)) throw bad('limit', `a whole number from 1 to ${QUERY_MAX_LIMIT}`);
    const positions = str('cursor') !== undefined ? decodePositions(str('cursor') as string) : {};

    const at = str('at');
    if (at !== undefined) {
      // One dead letter, by its place in the topic (what `ingestctl dlq show <partition>:<offset>` reads).
      const m = /^(\d{1,6}):(\d{1,15})$/.exec(at);
      if (!m) throw bad('at', 'write <partition>:<offset>, as dlq list prints it');
      const [partition, offset] = [Number(m[1]), Number(m[2])];
      const got = (await deps.admin.partitions(deps.topic)).some((p) => p.partition === partition && offset >= p.low && offset < p.high) ? await deps.admin.read(deps.topic, partition, offset, 1) : [];
      const l = got[0]?.offset === offset ? parseLetter(got[0].value) : undefined;
      return { topic: deps.topic, deadLetters: l ? [{ ...l, partition, offset }] : [], next: null, scanned: got.length };
    }
    const parts = await deps.admin.partitions(deps.topic);
    const out: DlqItem[] = [];
    const next: Record<string, number> = {};
    let scanned = 0;
    let done = true;
    for (const p of parts) {
      let off = Math.max(p.low, positions[String(p.partition)] ?? p.low);
      while (off < p.high && out.length < limit && scanned < DLQ_SCAN_MAX) {
        const got = await deps.admin.read(deps.topic, p.partition, off, Math.min(READ_CHUNK, DLQ_SCAN_MAX - scanned));
        if (got.length === 0) break;
        for (const m of got) {
          off = m.offset + 1;
          scanned++;
          const l = parseLetter(m.value);
          if (!l) continue;
          if (tenant !== undefined && l.tenant !== tenant) continue;
          if (reason !== undefined && l.code !== reason) continue;
          if (fromMs !== undefined && l.receivedAt < fromMs) continue;
          if (toMs !== undefined && l.receivedAt >= toMs) continue;
          out.push({ ...l, partition: p.partition, offset: m.offset });
          if (out.length >= limit) break;
        }
      }
      next[String(p.partition)] = off;
      if (off < p.high) done = false;
    }
    return { topic: deps.topic, deadLetters: out, next: done ? null : Buffer.from(JSON.stringify(next)).toString('base64url'), scanned };
  });
}
