/**
 * What both drills share: a throw-away embedded stack on free ports, ingestctl run in-process
 * with every command echoed as the operator would type it, bounded waits, and a hard time limit.
 * A drill never touches .data or the ports of `pnpm start`: everything lives in a temp directory.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli } from '@ingest/ingestctl';
import { freePort, startStack, type Stack } from '@ingest/supervisor';
import { addTenantKey } from '@ingest/tenants';

export class DrillFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DrillFailure';
  }
}

export interface DrillStack {
  stack: Stack;
  dir: string;
  /** What ingestctl reads, as `pnpm ingestctl` would get it from the shell. */
  env: Record<string, string>;
  sinkUrl: string;
  token: string;
  /** API keys of the tenants created before the start (the edge reads the file at start). */
  keys: Record<string, string>;
  stop(): Promise<void>;
}

export function step(n: number | string, what: string): void {
  console.log(`\n── step ${n}: ${what}`);
}

/** Starts the embedded stack (embedded log + chDB) in a temp directory, drill routes on. */
export async function startDrillStack(name: string, tenants: string[], extraEnv: Record<string, string> = {}): Promise<DrillStack> {
  const dir = await mkdtemp(path.join(tmpdir(), `drill-${name}-`));
  const token = randomBytes(24).toString('hex');
  const ports = { edge: await freePort(), normalizer: await freePort(), sink: await freePort() };
  const env = {
    INGEST_DATA_DIR: path.join(dir, 'data'),
    TENANTS_FILE: path.join(dir, 'data', 'tenants.json'),
    INGEST_INTERNAL_TOKEN: token,
    // Mounts POST /admin/v1/drill/delete-hour on this throw-away sink writer only.
    SINK_DRILL_ROUTES: 'true',
    LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  const keys: Record<string, string> = {};
  for (const t of tenants) keys[t] = (await addTenantKey(env.TENANTS_FILE, t)).apiKey;
  console.log(`starting the embedded stack in ${dir} (edge :${ports.edge}, sink writer :${ports.sink})`);
  const stack = await startStack({ env, ports, logDir: path.join(dir, 'logs') });
  const sinkUrl = stack.sink.url;
  let stopped = false;
  return {
    stack,
    dir,
    token,
    sinkUrl,
    keys,
    env: { ...env, SINK_URL: sinkUrl, EDGE_URL: stack.edgeUrl, NORMALIZER_URL: stack.normalizer.url, EDGE_ADMIN_URL: stack.edge.adminUrl, NORMALIZER_ADMIN_URL: stack.normalizer.adminUrl, SINK_ADMIN_URL: stack.sink.adminUrl, USER: 'drill' },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stack.stop();
      if (process.env['DRILL_KEEP'] !== '1') await rm(dir, { recursive: true, force: true });
      else console.log(`kept ${dir} (DRILL_KEEP=1)`);
    },
  };
}

export function keyOf(d: DrillStack, tenant: string): string {
  const k = d.keys[tenant];
  if (k === undefined) throw new DrillFailure(`no key for ${tenant}`);
  return k;
}

/** Runs `pnpm ingestctl <argv>` in-process, printing the command and its output. */
export async function ingestctl(d: DrillStack, argv: string[], opts: { quiet?: boolean; expect?: number[] } = {}): Promise<{ code: number; out: string; err: string }> {
  const quote = (a: string) => (!/[\s"'*;]/.test(a) ? a : a.includes("'") ? `"${a.replace(/(["\\$`])/g, '\\$1')}"` : `'${a}'`);
  console.log(`$ pnpm ingestctl ${argv.map(quote).join(' ')}`);
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env: d.env });
  if (!opts.quiet) {
    if (out.length > 0) console.log(out.join('\n'));
    if (err.length > 0) console.log(err.join('\n'));
  }
  const ok = opts.expect ?? [0];
  if (!ok.includes(code)) throw new DrillFailure(`ingestctl ${argv[0] ?? ''} exited ${code}, expected ${ok.join(' or ')}: ${err.join(' ').slice(0, 500)}`);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** POSTs entries to the edge as a producer would; throws unless every entry was accepted. */
export async function send(d: DrillStack, apiKey: string, entries: Array<Record<string, unknown>>): Promise<void> {
  for (let i = 0; i < entries.length; i += 500) {
    const part = entries.slice(i, i + 500);
    const res = await fetch(new URL('/v2/ingest', d.stack.edgeUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify(part),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json()) as { accepted?: number };
    if (res.status !== 200 || body.accepted !== part.length) throw new DrillFailure(`ingest answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
}

export function logEntries(n: number, fromMs: number, spanMs: number, label: string): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    type: i % 5 === 0 ? 'event' : 'log',
    timestamp: fromMs + Math.floor((i * spanMs) / n),
    app: 'drill',
    data: i % 5 === 0 ? { name: 'drill.tick', attributes: { i } } : { level: 'info', message: `${label} ${i}` },
  }));
}

/** Polls `check` until it returns true, at most `timeoutMs`; the condition is named in the failure. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new DrillFailure(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/**
 * Runs a drill under a hard limit, stops what it started whatever happens, and sets the exit
 * code: 0 with the summary on success, 1 on any failure.
 */
export async function runDrill(name: string, limitMs: number, body: (track: (d: DrillStack) => DrillStack) => Promise<string[]>): Promise<void> {
  const started = Date.now();
  const started_ = new Set<DrillStack>();
  const track = (d: DrillStack) => {
    started_.add(d);
    return d;
  };
  const timer = setTimeout(() => {
    console.error(`DRILL ${name}: FAIL — over its time limit of ${limitMs / 1000} s`);
    void Promise.allSettled([...started_].map((d) => d.stop())).then(() => process.exit(1));
  }, limitMs);
  timer.unref();
  let summary: string[] | undefined;
  let failure: unknown;
  try {
    summary = await body(track);
  } catch (e) {
    failure = e;
  } finally {
    for (const d of started_) await d.stop().catch((e: unknown) => console.error(`stopping the stack: ${(e as Error).message}`));
    clearTimeout(timer);
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (summary && failure === undefined) {
    console.log(`\nDRILL ${name}: PASS in ${secs} s`);
    for (const l of summary) console.log(`  ${l}`);
    process.exitCode = 0;
  } else {
    console.error(`\nDRILL ${name}: FAIL after ${secs} s — ${failure instanceof Error ? failure.message : String(failure)}`);
    process.exitCode = 1;
  }
}

export const randomId = (): string => randomUUID().slice(0, 8);
