import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IngestError, TOPICS } from '@ingest/contracts';
import { LogUnavailableError, type DurableLog, type LogAdmin, type LogProducer } from '@ingest/log';
import {
  NotAShadowTableError,
  ReplayRuns,
  ShadowStore,
  TABLES,
  assertShadowTable,
  formatDay,
  parseDay,
  type ReplayRunRecord,
  type ReplayRunStatus,
  type ShadowTableName,
  type TelemetryStore,
} from '@ingest/storage';
import type { DayGate } from '../loader/day-gate.ts';
import { AuditLog } from './audit.ts';
import { executeReplay, type ReplaySummary } from './execute.ts';
import { JobBusyError, ReplayJobs, type JobContext, type JobOutcome } from './jobs.ts';
import { buildPlan } from './plan.ts';
import { parseArgs, parseReplayRequest, parseWho, ReplayRequestError } from './request.ts';
import { resolveRange, type ResolvedRange } from './resolve.ts';

export interface ReplayRouteDeps {
  log: DurableLog;
  admin: LogAdmin;
  store: TelemetryStore;
  /** The sink writer's producer: Kafka mode publishes audit records with it. */
  producer: LogProducer;
  /** The live telemetry topic replays read. */
  topic: string;
  /** The audit file lives under it: <dataDir>/audit/shadow-ops.jsonl. */
  dataDir: string;
  /** Messages per read and per shadow insert (default 5000): bounds memory and block size. */
  chunk?: number;
  /** The live loader's gate; promote holds its day across check and REPLACE (none: no local loader). */
  liveGate?: DayGate;
}

/** Routes the CLI talks to; exported so the CLI and tests name them from one place. */
export const REPLAY_ROUTES = {
  jobs: '/admin/v1/replay/jobs',
  job: '/admin/v1/replay/jobs/:id',
  diff: '/admin/v1/shadow/diff',
  promote: '/admin/v1/shadow/promote',
  drop: '/admin/v1/shadow/drop',
} as const;

const DEFAULT_CHUNK = 5000;

/** The audit topic next to the telemetry topic: TOPICS.audit for the default topic name. */
export function auditTopicFor(topic: string): string {
  return topic === TOPICS.telemetry ? TOPICS.audit : `${topic}.audit`;
}

function badRequest(message: string): IngestError {
  // The catalog's generic 400; the message says exactly what to change.
  return new IngestError('INGEST_ERR_INVALID_BODY', message);
}

/** Maps what an operator can fix to 400 and a held slot to 409; the rest goes to the error handler. */
function mapError(e: unknown, reply: FastifyReply): FastifyReply | never {
  if (e instanceof ReplayRequestError || e instanceof NotAShadowTableError || e instanceof RangeError) throw badRequest(e.message);
  if (e instanceof JobBusyError) return reply.code(409).send(badRequest(e.message).toBody());
  if (e instanceof LogUnavailableError) throw new IngestError('INGEST_ERR_LOG_UNAVAILABLE', `the durable log is unavailable: ${e.message}`, { retryAfterSeconds: 5, cause: e });
  throw e;
}

function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw badRequest('the request must be a JSON object');
  return b as Record<string, unknown>;
}

function tableOf(raw: unknown): ShadowTableName {
  const t = raw === undefined || raw === null || raw === '' ? TABLES.shadow : String(raw);
  assertShadowTable(t);
  return t;
}

function dayOf(raw: unknown, required: true): number;
function dayOf(raw: unknown, required: false): number | undefined;
function dayOf(raw: unknown, required: boolean): number | undefined {
  if (raw === undefined || raw === null || raw === '') {
    if (required) throw badRequest('--day is required (YYYY-MM-DD, UTC)');
    return undefined;
  }
  const d = parseDay(String(raw));
  if (typeof d === 'string') throw badRequest(`--day: ${d}`);
  return d;
}

function runRecords(range: ResolvedRange, runId: string, who: string, status: ReplayRunStatus, startedAt: number, summary?: ReplaySummary): ReplayRunRecord[] {
  return range.partitions
    .filter((p) => p.offsets > 0)
    .map((p) => {
      const s = summary?.partitions.find((x) => x.partition === p.partition);
      return {
        runId,
        topic: range.topic,
        partition: p.partition,
        target: range.target,
        tenant: range.tenant ?? '',
        firstOffset: p.first,
        lastOffset: p.last,
        status,
        who,
        startedAt,
        updatedAt: Date.now(),
        read: s?.read ?? 0,
        inserted: s?.inserted ?? 0,
        skipped: s?.skippedDuplicates ?? 0,
        deadLettered: s?.deadLettered ?? 0,
      };
    });
}

/**
 * Replay and the shadow workflow, served by the sink writer because it owns the embedded log and
 * chDB (one data directory per process). One code path for both deployments: the CLI always comes
 * here. Nothing here writes the live table except promote, and nothing commits a consumer group.
 */
export function registerReplayRoutes(app: FastifyInstance, deps: ReplayRouteDeps): void {
  const { admin, store, topic } = deps;
  const chunk = deps.chunk ?? DEFAULT_CHUNK;
  const shadow = new ShadowStore(store);
  const runs = new ReplayRuns(store);
  const jobs = new ReplayJobs();
  const auditTopic = auditTopicFor(topic);
  const audit = new AuditLog({
    file: path.join(deps.dataDir, 'audit', 'shadow-ops.jsonl'),
    ...(deps.log.kind === 'kafka' ? { topic: { name: auditTopic, producer: deps.producer, ensure: () => admin.ensureTopic(auditTopic, 1) } } : {}),
    onError: (where, err) => app.log.error({ err, where }, 'audit record not written'),
  });
  const auditTargets = { file: audit.file, ...(audit.topic ? { topic: audit.topic } : {}) };

  const planJob = async (ctx: JobContext, range: ResolvedRange): Promise<JobOutcome> => {
    const plan = await buildPlan(
      { admin, lookup: shadow, previousRuns: (r) => runs.overlapping(r.topic, r.target, r.partitions) },
      range,
      { chunk, signal: ctx.signal, onProgress: ctx.progress },
    );
    return { plan };
  };

  const runJob = async (ctx: JobContext, range: ResolvedRange, who: string, from: string, args: string[]): Promise<JobOutcome> => {
    const started = Date.now();
    await audit.append({ action: 'replay', phase: 'start', id: ctx.id, who, from, args, plan: range });
    await runs.record(runRecords(range, ctx.id, who, 'running', started));
    const summary = await executeReplay({ admin, lookup: shadow, writer: store }, range, {
      runId: ctx.id,
      chunk,
      signal: ctx.signal,
      onProgress: ctx.progress,
      onTotals: ctx.totals,
      onRetry: (info) => app.log.warn(info, 'replay insert failed; retrying the same block with the same token'),
    });
    try {
      await runs.record(runRecords(range, ctx.id, who, summary.status, started, summary));
    } catch (err) {
      app.log.error({ err, runId: ctx.id }, 'could not record the end of a replay run');
    }
    const written = await audit.append({ action: 'replay', phase: 'end', id: ctx.id, who, from, args, plan: range, result: summary });
    app.log.info({ runId: ctx.id, who, status: summary.status, read: summary.read, inserted: summary.inserted, skipped: summary.skippedDuplicates }, 'replay finished');
    return {
      summary: { ...summary, audit: { ...auditTargets, written } },
      state: summary.status,
      ...(summary.error !== undefined ? { error: summary.error } : {}),
    };
  };

  app.post(REPLAY_ROUTES.jobs, async (req, reply) => {
    try {
      const b = body(req);
      const mode = b['mode'];
      if (mode !== 'plan' && mode !== 'run') throw badRequest('mode must be "plan" (writes nothing) or "run"');
      const request = parseReplayRequest(b);
      const who = parseWho(b['who']);
      const args = parseArgs(b['args']);
      const slot = jobs.reserve(`${mode} requested by ${who}`);
      let range: ResolvedRange;
      try {
        range = await resolveRange(admin, topic, request);
      } catch (e) {
        slot.release();
        throw e;
      }
      const view = slot.start(mode, who, range, (ctx) => (mode === 'plan' ? planJob(ctx, range) : runJob(ctx, range, who, req.ip, args)));
      return await reply.code(202).send(view);
    } catch (e) {
      return mapError(e, reply);
    }
  });

  app.get(REPLAY_ROUTES.jobs, async () => ({ jobs: jobs.list() }));

  app.get(REPLAY_ROUTES.job, async (req) => {
    const { id } = req.params as { id: string };
    const v = jobs.get(id);
    if (!v) throw new IngestError('INGEST_ERR_NOT_FOUND', `no replay job ${id} on this sink writer (jobs are kept in memory; finished runs are in the audit log)`);
    return v;
  });

  app.delete(REPLAY_ROUTES.job, async (req) => {
    const { id } = req.params as { id: string };
    const v = jobs.cancel(id);
    if (!v) throw new IngestError('INGEST_ERR_NOT_FOUND', `no replay job ${id} on this sink writer`);
    return v;
  });

  app.get(REPLAY_ROUTES.diff, async (req, reply) => {
    try {
      const q = req.query as Record<string, string | string[] | undefined>;
      const rawDays = q['day'] === undefined ? [] : Array.isArray(q['day']) ? q['day'] : [q['day']];
      const days = rawDays.map((d) => dayOf(d, true));
      const tenant = typeof q['tenant'] === 'string' && q['tenant'] !== '' ? q['tenant'] : undefined;
      const table = tableOf(q['table']);
      const d = await shadow.diff({ days, table, ...(tenant ? { tenant } : {}) });
      const rows = d.rows.map((r) => ({ ...r, day: formatDay(r.day) }));
      return {
        live: TABLES.live,
        shadow: table,
        tenant: tenant ?? null,
        days: d.days.map(formatDay),
        equal: rows.every((r) => r.equal),
        totals: {
          live: rows.reduce((a, r) => a + r.liveCount, 0),
          shadow: rows.reduce((a, r) => a + r.shadowCount, 0),
          buckets: rows.length,
          differing: rows.filter((r) => !r.equal).length,
        },
        rows,
      };
    } catch (e) {
      return mapError(e, reply);
    }
  });

  app.post(REPLAY_ROUTES.promote, async (req, reply) => {
    try {
      const b = body(req);
      const day = dayOf(b['day'], true);
      const table = tableOf(b['table']);
      const who = parseWho(b['who']);
      const args = parseArgs(b['args']);
      const yes = b['yes'] === true;
      const allowLoss = b['allowLoss'] === true;
      const promoteHeld = async () => {
        const plan = await shadow.promotePlan(day, table);
        const id = `promote-${day}-${Date.now()}`;
        const refuse = async (status: number, reason: string) => {
          await audit.append({ action: 'promote', phase: 'end', id, who, from: req.ip, args, plan, result: { executed: false, refused: reason } });
          return reply.code(status).send(badRequest(reason).toBody());
        };
        if (plan.shadowRows === 0) {
          return refuse(400, `${table} holds nothing for ${formatDay(day)}: promoting would empty that day in ${TABLES.live}. Replay the day into the shadow first.`);
        }
        if (plan.liveOnly > 0 && !allowLoss) {
          return refuse(
            409,
            `${plan.liveOnly} entries of ${formatDay(day)} are in ${TABLES.live} but not in ${table}; REPLACE PARTITION would delete them. ` +
              `Replay the whole day into the shadow first (see runbooks/replay.md), or pass --allow-loss if losing them is intended.`,
          );
        }
        await audit.append({ action: 'promote', phase: 'start', id, who, from: req.ip, args, plan });
        await shadow.promote(day, table);
        const after = await shadow.promotePlan(day, table);
        const result = {
          executed: true,
          liveRowsBefore: plan.liveRows,
          liveRowsAfter: after.liveRows,
          shadowRows: after.shadowRows,
          liveEqualsShadow: after.liveOnly === 0 && after.shadowOnly === 0 && after.liveRows === after.shadowRows,
        };
        const written = await audit.append({ action: 'promote', phase: 'end', id, who, from: req.ip, args, plan, result });
        app.log.warn({ who, day, ...result }, 'shadow day promoted into live');
        return { executed: true, plan, result, audit: { ...auditTargets, written } };
      };
      return await jobs.exclusive(`promote of ${formatDay(day)} by ${who}`, async () => {
        if (!yes) return { executed: false, plan: await shadow.promotePlan(day, table) };
        // From the check to the REPLACE, no live insert may land in this day: it would pass the
        // check unseen and then be replaced away while its offsets are committed. The loader waits.
        const leave = await deps.liveGate?.hold(day);
        try {
          return await promoteHeld();
        } finally {
          leave?.();
        }
      });
    } catch (e) {
      return mapError(e, reply);
    }
  });

  app.post(REPLAY_ROUTES.drop, async (req, reply) => {
    try {
      const b = body(req);
      const day = dayOf(b['day'], false);
      const table = tableOf(b['table']);
      const who = parseWho(b['who']);
      const args = parseArgs(b['args']);
      const yes = b['yes'] === true;
      return await jobs.exclusive(`drop of ${table} by ${who}`, async () => {
        const days = (await shadow.days(table)).filter((d) => day === undefined || d.day === day);
        const plan = {
          table,
          days: days.map((d) => ({ day: formatDay(d.day), rows: d.rows })),
          rows: days.reduce((a, d) => a + d.rows, 0),
          sql: day === undefined ? `TRUNCATE TABLE ${table}` : `ALTER TABLE ${table} DROP PARTITION ${day}`,
        };
        if (!yes) return { executed: false, plan };
        const id = `drop-${Date.now()}`;
        await shadow.drop(table, day);
        const rowsAfter = (await shadow.days(table)).filter((d) => day === undefined || d.day === day).reduce((a, d) => a + d.rows, 0);
        const result = { executed: true, rowsBefore: plan.rows, rowsAfter };
        const written = await audit.append({ action: 'drop', phase: 'end', id, who, from: req.ip, args, plan, result });
        return { executed: true, plan, result, audit: { ...auditTargets, written } };
      });
    } catch (e) {
      return mapError(e, reply);
    }
  });

  // Before the log and the store close (onClose): a running job stops after its chunk.
  app.addHook('preClose', async () => {
    await jobs.close();
  });
}
