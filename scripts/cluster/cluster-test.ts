/**
 * `pnpm cluster:test`: the distributed product as a cluster on this one machine, under steady load
 * and a sequence of faults, then an exactly-once check of what was acknowledged (docs/cluster-test.md).
 *
 * Every component is its own process in its own Linux network namespace ("host") on a private
 * bridge (10.231.0.0/24): three Kafka KRaft brokers (combined broker+controller, 3 voters,
 * replication factor 3, min.insync.replicas 2), Redis, chDB behind a ClickHouse-HTTP shim (not a
 * ClickHouse server), two sink writers (one loader group), two normalizers, two edges, and nginx
 * with the cut-over configuration in front of the edges. The load generator runs in the root
 * namespace and posts through nginx at a fixed rate, retrying like the SDK (same entry ids).
 *
 * Needs root (ip netns), java (the Kafka jars of deploy/local/kafka.sh fetch), redis-server, nginx.
 * Environment: CLUSTER_RATE (entries/s, 300), CLUSTER_BATCH (entries a request, 20),
 * CLUSTER_RUN_DIR (/tmp/ingest-cluster-test; logs stay there after the run), CLUSTER_KAFKA_HEAP (-Xmx384m).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, chownSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { HttpTransport, retryDelay } from '@ingest/client';
import { addTenantKey, renderNginxMap, routeMapEntries, setTenantRoute } from '@ingest/tenants';
import { waitUntil } from '@ingest/testkit';
import { SHIM_NAME } from './chdb-http-shim.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUN = process.env['CLUSTER_RUN_DIR'] ?? '/tmp/ingest-cluster-test';
const RATE = Number(process.env['CLUSTER_RATE'] ?? 300);
const BATCH = Number(process.env['CLUSTER_BATCH'] ?? 20);
const KAFKA_HEAP = process.env['CLUSTER_KAFKA_HEAP'] ?? '-Xms128m -Xmx384m';
const LIBS = path.join(ROOT, 'deploy/local/.cache/kafka/libs');
const TENANT = 'cluster';
/** Namespaces, veths and the bridge all carry this prefix: cleanup finds exactly what a run made. */
const NS_PREFIX = 'ict-';
const BRIDGE = 'ictbr0';
const NET = '10.231.0';
const T0 = Date.now();

interface Host {
  name: string;
  ip: string;
}
const HOSTS = {
  k1: { name: 'k1', ip: `${NET}.11` },
  k2: { name: 'k2', ip: `${NET}.12` },
  k3: { name: 'k3', ip: `${NET}.13` },
  redis: { name: 'redis', ip: `${NET}.20` },
  ch: { name: 'ch', ip: `${NET}.30` },
  sink1: { name: 'sink1', ip: `${NET}.41` },
  sink2: { name: 'sink2', ip: `${NET}.42` },
  norm1: { name: 'norm1', ip: `${NET}.51` },
  norm2: { name: 'norm2', ip: `${NET}.52` },
  edge1: { name: 'edge1', ip: `${NET}.61` },
  edge2: { name: 'edge2', ip: `${NET}.62` },
  lb: { name: 'lb', ip: `${NET}.70` },
} satisfies Record<string, Host>;
const BROKERS = [HOSTS.k1, HOSTS.k2, HOSTS.k3];
const BROKER_LIST = BROKERS.map((b) => `${b.ip}:9092`);

function log(msg: string): void {
  console.log(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
}

function sh(cmd: string, args: string[], opts: { tolerate?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (opts.tolerate) return '';
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`);
  }
}

const nsOf = (h: Host): string => `${NS_PREFIX}${h.name}`;
/** Inside the namespace; the host side is `ict<name>h`. Both within the 15-character limit. */
const vethIn = (h: Host): string => `ict${h.name}n`;

// --- network ---------------------------------------------------------------------------------

/** Removes what any run made: processes in our namespaces (by their pids), the namespaces, the bridge. */
function cleanNetwork(): void {
  const list = sh('ip', ['netns', 'list'], { tolerate: true });
  for (const line of list.split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    if (!ns.startsWith(NS_PREFIX)) continue;
    for (const pid of sh('ip', ['netns', 'pids', ns], { tolerate: true }).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    sh('ip', ['netns', 'del', ns], { tolerate: true });
  }
  // A deleted namespace can outlive its last process for a while (the kernel tears it down
  // asynchronously), keeping its veth pair; deleting our end removes both.
  for (const line of sh('ip', ['-o', 'link', 'show'], { tolerate: true }).split('\n')) {
    const name = /^\d+: (ict[a-z0-9]+h)@/.exec(line)?.[1];
    if (name !== undefined) sh('ip', ['link', 'del', name], { tolerate: true });
  }
  if (sh('ip', ['link', 'show', BRIDGE], { tolerate: true }) !== '') sh('ip', ['link', 'del', BRIDGE], { tolerate: true });
}

function buildNetwork(): void {
  sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${NET}.1/24`, 'dev', BRIDGE]);
  sh('ip', ['link', 'set', BRIDGE, 'up']);
  for (const h of Object.values(HOSTS)) {
    const ns = nsOf(h);
    const outer = `ict${h.name}h`;
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', vethIn(h)]);
    sh('ip', ['link', 'set', vethIn(h), 'netns', ns]);
    sh('ip', ['link', 'set', outer, 'master', BRIDGE, 'up']);
    sh('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${h.ip}/24`, 'dev', vethIn(h)]);
    sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', vethIn(h), 'up']);
    sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  }
}

function setLink(h: Host, state: 'up' | 'down'): void {
  sh('ip', ['netns', 'exec', nsOf(h), 'ip', 'link', 'set', vethIn(h), state]);
}

// --- processes -------------------------------------------------------------------------------

/** One component: a command run in its host's namespace, restartable, logs under RUN/<name>/. */
class Proc {
  private child: ChildProcess | undefined;
  private starts = 0;
  exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly host: Host,
    private readonly cmd: string[],
    private readonly env: Record<string, string> = {},
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get logFile(): string {
    return path.join(RUN, 'logs', `${this.name}.${this.starts}.log`);
  }

  start(): void {
    this.starts++;
    mkdirSync(path.dirname(this.logFile), { recursive: true });
    const fd = openSync(this.logFile, 'a');
    // `ip netns exec` execs the command, so the child's pid is the component's own.
    const child = spawn('ip', ['netns', 'exec', nsOf(this.host), ...this.cmd], { cwd: ROOT, env: { ...process.env, ...this.env }, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 15_000): Promise<void> {
    if (!this.running() || this.child?.pid === undefined) return;
    process.kill(this.child.pid, signal);
    const done = await Promise.race([this.exited.then(() => true), delay(timeoutMs).then(() => false)]);
    if (!done) {
      process.kill(this.child.pid, 'SIGKILL');
      await this.exited;
    }
  }

  logText(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }
}

const procs: Proc[] = [];
function proc(name: string, host: Host, cmd: string[], env: Record<string, string> = {}): Proc {
  const p = new Proc(name, host, cmd, env);
  procs.push(p);
  return p;
}

function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.end();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

function redisPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 1000);
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d: Buffer) => {
      clearTimeout(t);
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

async function httpOk(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

/** Waits for the condition, failing fast (with the log's tail) if the process died meanwhile. */
async function waitReady(p: Proc, what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  await waitUntil(`${p.name}: ${what}`, async () => {
    if (!p.running()) throw new Error(`${p.name} exited while starting; last lines of ${p.logFile}:\n${p.logText().split('\n').slice(-30).join('\n')}`);
    return check();
  }, timeoutMs, 250);
}

// --- kafka -----------------------------------------------------------------------------------

function writeBrokerConfig(i: number, h: Host): string {
  const dir = path.join(RUN, h.name);
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const props = path.join(dir, 'server.properties');
  writeFileSync(props, [
    'process.roles=broker,controller',
    `node.id=${i + 1}`,
    `controller.quorum.voters=${BROKERS.map((b, j) => `${j + 1}@${b.ip}:9093`).join(',')}`,
    `listeners=PLAINTEXT://${h.ip}:9092,CONTROLLER://${h.ip}:9093`,
    `advertised.listeners=PLAINTEXT://${h.ip}:9092`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${path.join(dir, 'data')}`,
    'auto.create.topics.enable=false',
    'num.partitions=3',
    // The cluster's own settings: three copies, an acks=all write needs two.
    'default.replication.factor=3',
    'min.insync.replicas=2',
    'unclean.leader.election.enable=false',
    'offsets.topic.replication.factor=3',
    'offsets.topic.num.partitions=5',
    'transaction.state.log.replication.factor=3',
    'transaction.state.log.min.isr=2',
    'transaction.state.log.num.partitions=3',
    'group.initial.rebalance.delay.ms=0',
    // A broker cut off for 20 s must drop out of the ISR within the fault, not after it.
    'replica.lag.time.max.ms=10000',
    'broker.session.timeout.ms=9000',
    'broker.heartbeat.interval.ms=2000',
    'num.network.threads=2',
    'num.io.threads=2',
    'num.recovery.threads.per.data.dir=1',
    'log.retention.hours=24',
    '',
  ].join('\n'));
  writeFileSync(path.join(dir, 'log4j.properties'), [
    'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.org.apache.kafka.clients=WARN',
    '',
  ].join('\n'));
  return props;
}

const JVM = ['-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:-UsePerfData', '-Djava.awt.headless=true'];

function formatBroker(h: Host, props: string, clusterId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('java', ['-Xmx192m', ...JVM, `-Dlog4j.configuration=file:${path.join(RUN, h.name, 'log4j.properties')}`, '-cp', `${LIBS}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', props], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`formatting ${h.name} failed:\n${out}`))));
  });
}

function brokerProc(h: Host, props: string): Proc {
  return proc(h.name, h, ['java', ...KAFKA_HEAP.split(' '), ...JVM, `-Dkafka.logs.dir=${path.join(RUN, h.name)}`, `-Dlog4j.configuration=file:${path.join(RUN, h.name, 'log4j.properties')}`, '-cp', `${LIBS}/*`, 'kafka.Kafka', props]);
}

async function waitBroker(p: Proc, timeoutMs = 180_000): Promise<void> {
  await waitReady(p, 'Kafka Server started', async () => p.logText().includes('Kafka Server started') && (await tcpOpen(p.host.ip, 9092)), timeoutMs);
}

const kafka = new Kafka({ clientId: 'cluster-test', brokers: BROKER_LIST, logLevel: logLevel.NOTHING, retry: { retries: 2 } });

/** Every partition of every topic has all three replicas in sync (and a leader). */
async function waitFullIsr(what: string, timeoutMs = 150_000): Promise<void> {
  await waitUntil(`every partition back to 3 in-sync replicas (${what})`, async () => {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const md = await admin.fetchTopicMetadata();
      const parts = md.topics.flatMap((t) => t.partitions);
      return parts.length > 0 && parts.every((p) => p.isr.length === 3 && p.leader >= 0);
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }, timeoutMs, 1000);
}

// --- load ------------------------------------------------------------------------------------

interface BatchResult {
  startedAt: number;
  ackedAt: number | undefined;
}

/**
 * A fixed arrival rate (k6's constant-arrival-rate): a batch is due every BATCH/RATE seconds
 * whatever the answers; each batch is retried with the SDK's backoff and its same ids until the
 * edge takes it. In-flight batches are bounded; a due batch over the bound is dropped (counted).
 */
class Load {
  readonly acked = new Set<string>();
  readonly results: BatchResult[] = [];
  readonly statuses = new Map<string, number>();
  /** Every answer that was not a 2xx, with its time: shown per fault. */
  readonly failures: number[] = [];
  dropped = 0;
  rejected = 0;
  private seq = 0;
  private inflight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly transport: HttpTransport;
  private readonly maxInflight = 256;

  constructor(private readonly url: string, apiKey: string, private readonly run: string) {
    // One signal ends every batch's retry wait; hundreds listen to it at once.
    setMaxListeners(0, this.abort.signal);
    this.transport = new HttpTransport({ endpoint: url, apiKey, connections: 32, timeoutMs: 15_000 });
  }

  start(): void {
    const t0 = Date.now();
    const interval = (1000 * BATCH) / RATE;
    let sent = 0;
    this.timer = setInterval(() => {
      const due = Math.floor((Date.now() - t0) / interval) - sent;
      for (let i = 0; i < due; i++) {
        sent++;
        if (this.inflight.size >= this.maxInflight) {
          this.dropped++;
          continue;
        }
        const p = this.sendBatch().finally(() => this.inflight.delete(p));
        this.inflight.add(p);
      }
    }, 20);
  }

  private count(key: string): void {
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
  }

  private async sendBatch(): Promise<void> {
    const ids: string[] = [];
    const entries: Buffer[] = [];
    const now = Date.now();
    for (let i = 0; i < BATCH; i++) {
      const id = `${this.run}-${++this.seq}`;
      ids.push(id);
      entries.push(Buffer.from(JSON.stringify({ id, type: 'log', timestamp: now, app: 'cluster-test', data: { level: 'info', message: `entry ${this.seq}` } })));
    }
    const res: BatchResult = { startedAt: now, ackedAt: undefined };
    this.results.push(res);
    let failures = 0;
    while (!this.abort.signal.aborted) {
      const r = await this.transport.send(entries, { signal: this.abort.signal });
      this.count(r.kind === 'ok' ? 'ok' : `${r.kind}:${r.status ?? r.code}`);
      if (r.kind !== 'ok') this.failures.push(Date.now());
      if (r.kind === 'ok') {
        const refused = new Set(r.rejected.map((x) => x.index));
        this.rejected += refused.size;
        ids.forEach((id, i) => {
          if (!refused.has(i)) this.acked.add(id);
        });
        res.ackedAt = Date.now();
        return;
      }
      if (r.kind === 'reject' || r.kind === 'tooLarge') return;
      // retry and auth (a key not yet seen by a restarted edge) both go round again, as the SDK does.
      if (this.stopped && failures > 200) return;
      const ms = retryDelay(++failures, 100, 2000, r.kind === 'retry' ? r.retryAfterMs : undefined);
      await delay(ms, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
  }

  /** Stops new batches and waits (bounded) for those in flight to be taken; the rest are aborted, not acked. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const all = Promise.all([...this.inflight]);
    const settled = await Promise.race([all.then(() => true), delay(timeoutMs).then(() => false)]);
    if (!settled) {
      this.abort.abort();
      await all;
    }
    await this.transport.close();
  }

  /** Waits until `n` more entries were acknowledged than now: the pipeline is taking load again. */
  async progress(what: string, n = Math.max(100, RATE * 2), timeoutMs = 90_000): Promise<void> {
    const from = this.acked.size;
    await waitUntil(`${n} more acknowledged entries (${what})`, async () => this.acked.size >= from + n, timeoutMs, 200);
  }
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)] as number;
}

// --- the store -------------------------------------------------------------------------------

async function chQuery(sql: string, params: Record<string, string> = {}): Promise<string> {
  const u = new URL(`http://${HOSTS.ch.ip}:8123/`);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(`param_${k}`, v);
  const r = await fetch(u, { method: 'POST', body: sql, signal: AbortSignal.timeout(60_000) });
  const text = await r.text();
  if (!r.ok) throw new Error(`store query failed: ${text.slice(0, 300)}`);
  return text;
}

// --- the run ---------------------------------------------------------------------------------

function prepareRunDir(): void {
  rmSync(RUN, { recursive: true, force: true });
  mkdirSync(RUN, { recursive: true });
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

function renderNginx(secret: string, cutoverDir: string): string {
  const prefix = path.join(RUN, 'nginx');
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const edges = [HOSTS.edge1, HOSTS.edge2].map((h) => `${h.ip}:8080`);
  // The template has one edge server; the cluster balances over both (a failed one is skipped for 10 s).
  const conf = readFileSync(path.join(ROOT, 'deploy/nginx/ingest.conf.template'), 'utf8')
    .replaceAll('@@PREFIX@@', prefix)
    .replaceAll('@@LISTEN@@', `${HOSTS.lb.ip}:8080`)
    .replaceAll('server @@EDGE_UPSTREAM@@;', edges.map((e) => `server ${e} max_fails=1 fail_timeout=10s;`).join('\n        '))
    .replaceAll('@@LEGACY_UPSTREAM@@', `${NET}.99:9`)
    .replaceAll('@@CUTOVER_DIR@@', cutoverDir)
    .replaceAll('@@WORKERS@@', '1')
    .replaceAll('@@MAX_BODY@@', '16m')
    .replaceAll('@@DAEMON@@', 'off')
    .replaceAll('@@LB_SHARED_SECRET@@', secret);
  if (/@@[A-Z_]+@@/.test(conf.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n'))) throw new Error('unrendered placeholder in the nginx config');
  const file = path.join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  const nobody = Number(sh('id', ['-u', 'nobody']).trim());
  const nogroup = Number(sh('id', ['-g', 'nobody']).trim());
  chownTree(prefix, nobody, nogroup);
  chownTree(cutoverDir, nobody, nogroup);
  return file;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('cluster:test needs root (ip netns, veth, bridge)');
  sh('bash', [path.join(ROOT, 'deploy/local/kafka.sh'), 'fetch']);
  for (const bin of ['redis-server', 'nginx', 'java']) if (sh('bash', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin} && echo /usr/sbin/${bin}`], { tolerate: true }).trim() === '') throw new Error(`${bin} not found`);
  const nginxBin = sh('bash', ['-c', 'command -v nginx || echo /usr/sbin/nginx']).trim();

  log('cleaning up what an earlier run left');
  cleanNetwork();
  prepareRunDir();
  buildNetwork();
  log(`network: bridge ${BRIDGE} ${NET}.1/24, ${Object.keys(HOSTS).length} namespaces`);

  // Kafka: format the three log dirs with one cluster id, then start the quorum together.
  const clusterId = randomBytes(16).toString('base64url').slice(0, 22);
  const props = BROKERS.map((h, i) => writeBrokerConfig(i, h));
  await Promise.all(BROKERS.map((h, i) => formatBroker(h, props[i] as string, clusterId)));
  const brokers = BROKERS.map((h, i) => brokerProc(h, props[i] as string));
  for (const b of brokers) b.start();

  const redis = proc('redis', HOSTS.redis, ['redis-server', '--bind', '0.0.0.0', '--port', '6379', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', RUN]);
  redis.start();
  const ch = proc('chdb-shim', HOSTS.ch, [process.execPath, '--import', 'tsx', 'scripts/cluster/chdb-http-shim.ts', '--host', '0.0.0.0', '--port', '8123', '--path', path.join(RUN, 'chdb')]);
  ch.start();
  await Promise.all([
    ...brokers.map((b) => waitBroker(b)),
    waitReady(redis, 'PONG', () => redisPing(HOSTS.redis.ip, 6379), 20_000),
    waitReady(ch, '/ping', () => httpOk(`http://${HOSTS.ch.ip}:8123/ping`), 60_000),
  ]);
  log(`kafka: 3 brokers up (${BROKER_LIST.join(', ')}); redis up; ${SHIM_NAME} up`);

  const token = randomBytes(24).toString('hex');
  const secret = randomBytes(24).toString('hex');
  const tenantsFile = path.join(RUN, 'tenants', 'tenants.json');
  const cutoverFile = path.join(RUN, 'tenants', 'cutover.json');
  const cutoverDir = path.join(RUN, 'cutover-nginx');
  mkdirSync(path.dirname(tenantsFile), { recursive: true });
  mkdirSync(cutoverDir, { recursive: true });
  const { apiKey } = await addTenantKey(tenantsFile, TENANT, { entriesPerSecond: 100_000, requestsPerSecond: 10_000 });
  // The tenant is cut over the way `ingestctl cutover` does it: the set, then the LB's map from it.
  await setTenantRoute({ tenantsFile, cutoverFile }, TENANT, 'v2', async (doc, tenants) => {
    const r = renderNginxMap(routeMapEntries(tenants, doc), tenants, doc.generation);
    writeFileSync(path.join(cutoverDir, 'cutover-map.conf'), r.map);
    writeFileSync(path.join(cutoverDir, 'cutover-generation.conf'), r.generation);
  });

  const common: Record<string, string> = {
    KAFKA_BROKERS: BROKER_LIST.join(','),
    KAFKA_REPLICATION_FACTOR: '3',
    KAFKA_MIN_INSYNC_REPLICAS: '2',
    CLICKHOUSE_URL: `http://${HOSTS.ch.ip}:8123`,
    REDIS_URL: `redis://${HOSTS.redis.ip}:6379`,
    INGEST_INTERNAL_TOKEN: token,
    LB_SHARED_SECRET: secret,
    TENANTS_FILE: tenantsFile,
    CUTOVER_FILE: cutoverFile,
    INGEST_HOST: '0.0.0.0',
    ADMIN_HOST: '0.0.0.0',
    LOG_LEVEL: 'warn',
    NODE_OPTIONS: '--max-old-space-size=256',
  };
  const svc = (name: string, host: Host, main: string, env: Record<string, string>): Proc =>
    proc(name, host, [process.execPath, '--import', 'tsx', main], { ...common, INGEST_DATA_DIR: path.join(RUN, name, 'data'), ...env });
  const sinks = [HOSTS.sink1, HOSTS.sink2].map((h) => svc(h.name, h, 'services/sink-writer/src/main.ts', {}));
  const norms = [HOSTS.norm1, HOSTS.norm2].map((h, i) => svc(h.name, h, 'services/normalizer/src/main.ts', { SINK_URL: `http://${[HOSTS.sink1, HOSTS.sink2][i]?.ip}:8082` }));
  const edges = [HOSTS.edge1, HOSTS.edge2].map((h, i) =>
    svc(h.name, h, 'services/edge/src/main.ts', { NORMALIZER_URL: `http://${[HOSTS.norm1, HOSTS.norm2][i]?.ip}:8081`, SINK_URL: `http://${[HOSTS.sink1, HOSTS.sink2][i]?.ip}:8082` }),
  );
  const ready = (p: Proc, port: number): Promise<void> => waitReady(p, '/readyz', () => httpOk(`http://${p.host.ip}:${port}/readyz`), 120_000);
  // Sink writers first: they create the topics (replication factor 3) and migrate the store.
  for (const s of sinks) s.start();
  await Promise.all(sinks.map((s) => ready(s, 8082)));
  for (const p of [...norms, ...edges]) p.start();
  await Promise.all([...norms.map((p) => ready(p, 8081)), ...edges.map((p) => ready(p, 8080))]);
  log('services: 2 sink writers, 2 normalizers, 2 edges ready');

  const nginxConf = renderNginx(secret, cutoverDir);
  sh('ip', ['netns', 'exec', nsOf(HOSTS.lb), 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', nginxBin, '-t', '-q', '-p', path.join(RUN, 'nginx'), '-c', nginxConf, '-e', path.join(RUN, 'nginx/logs/error.log')]);
  const nginx = proc('nginx', HOSTS.lb, ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', nginxBin, '-p', path.join(RUN, 'nginx'), '-c', nginxConf, '-e', path.join(RUN, 'nginx/logs/error.log')]);
  nginx.start();
  await waitReady(nginx, 'listening', () => tcpOpen(HOSTS.lb.ip, 8080), 20_000);
  await waitFullIsr('before load');
  log(`nginx up on ${HOSTS.lb.ip}:8080 (tenant "${TENANT}" cut over to v2); every partition has 3 in-sync replicas`);

  const run = randomBytes(4).toString('hex');
  const load = new Load(`http://${HOSTS.lb.ip}:8080`, apiKey, run);
  load.start();
  log(`load: ${RATE} entries/s in requests of ${BATCH}, through nginx`);
  await load.progress('warm-up', RATE * 5);

  const faultsFrom = Date.now();
  const windows: Array<{ name: string; from: number; to: number }> = [];
  const fault = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const from = Date.now();
    log(`fault: ${name}`);
    await fn();
    windows.push({ name, from, to: Date.now() });
    log(`fault: ${name}: recovered in ${((Date.now() - from) / 1000).toFixed(1)} s`);
  };
  const k2 = brokers[1] as Proc;
  await fault('kill -9 broker k2, restart it', async () => {
    await k2.kill('SIGKILL');
    await load.progress('with k2 dead');
    k2.start();
    await waitBroker(k2);
    await waitFullIsr('k2 restarted');
  });
  await fault('broker k3 cut off for 20 s (link down, then up)', async () => {
    setLink(HOSTS.k3, 'down');
    await delay(20_000);
    setLink(HOSTS.k3, 'up');
    await waitFullIsr('k3 link up');
    await load.progress('after k3 link up');
  });
  const [sink1] = sinks as [Proc, Proc];
  const [norm1] = norms as [Proc, Proc];
  const [edge1] = edges as [Proc, Proc];
  for (const [p, port] of [[sink1, 8082], [norm1, 8081], [edge1, 8080]] as const) {
    await fault(`kill -9 ${p.name}, restart it`, async () => {
      await p.kill('SIGKILL');
      await load.progress(`with ${p.name} dead`);
      p.start();
      await ready(p, port);
      await load.progress(`${p.name} restarted`);
    });
  }
  await fault('restart redis', async () => {
    await redis.kill('SIGTERM');
    redis.start();
    await waitReady(redis, 'PONG', () => redisPing(HOSTS.redis.ip, 6379), 20_000);
    await load.progress('redis restarted');
  });
  const faultsTo = Date.now();

  await load.stop(90_000);
  const acked = load.acked;
  log(`load stopped: ${acked.size} entries acknowledged, ${load.dropped} batches not sent (over ${256} in flight), ${load.rejected} refused; answers ${JSON.stringify(Object.fromEntries(load.statuses))}`);

  const admin = { 'x-ingest-internal-token': token };
  await waitUntil('the loaders to catch up (lag 0)', async () => {
    for (const s of sinks) {
      try {
        const r = await fetch(`http://${s.host.ip}:8082/admin/v1/lag`, { headers: admin, signal: AbortSignal.timeout(5000) });
        const b = (await r.json()) as { total?: number };
        if (!r.ok || b.total !== 0) return false;
      } catch {
        return false;
      }
    }
    return true;
  }, 180_000, 500);

  let present = new Map<string, number>();
  await waitUntil('every acknowledged entry at rest', async () => {
    const text = await chQuery('SELECT id FROM telemetry FINAL WHERE tenant_id = {t:String} FORMAT TabSeparated', { t: TENANT });
    present = new Map();
    for (const id of text.split('\n')) if (id) present.set(id, (present.get(id) ?? 0) + 1);
    for (const id of acked) if (!present.has(id)) return false;
    return true;
  }, 60_000, 1000).catch((e: unknown) => log(`not everything acknowledged is at rest: ${(e as Error).message}`));

  let atRest = 0;
  for (const id of acked) if (present.has(id)) atRest++;
  let duplicates = 0;
  for (const n of present.values()) if (n > 1) duplicates += n - 1;
  const [raw, distinct] = (await chQuery('SELECT count(), uniqExact(id) FROM telemetry WHERE tenant_id = {t:String} FORMAT TabSeparated', { t: TENANT })).trim().split('\t').map(Number);
  const lost = acked.size - atRest;
  const latencies = load.results.filter((r) => r.ackedAt !== undefined && r.startedAt >= faultsFrom && r.startedAt <= faultsTo).map((r) => (r.ackedAt as number) - r.startedAt);
  log(`store: ${present.size} ids in FINAL (${raw} rows before FINAL, ${distinct} distinct ids), of them ${present.size - atRest} sent but never acknowledged; faults took ${((faultsTo - faultsFrom) / 1000).toFixed(0)} s; ${latencies.length} requests acknowledged during faults`);
  for (const w of windows) {
    const inside = load.results.filter((r) => r.ackedAt !== undefined && r.startedAt >= w.from && r.startedAt <= w.to).map((r) => (r.ackedAt as number) - r.startedAt);
    const failed = load.failures.filter((t) => t >= w.from && t <= w.to).length;
    log(`  ${w.name}: ${((w.to - w.from) / 1000).toFixed(1)} s, ${inside.length} requests acknowledged, p99 ${p99(inside)} ms, ${failed} answers retried`);
  }
  console.log(`cluster: acked ${acked.size}, at rest ${atRest}, lost ${lost}, duplicates ${duplicates}, p99 ${p99(latencies)} ms during faults`);
  return lost === 0 && duplicates === 0 && acked.size > 0 ? 0 : 1;
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL', 5000).catch(() => undefined)));
    cleanNetwork();
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`cluster:test: ${sig}, stopping every process and removing the network`);
    cleanup().then(() => process.exit(130), () => process.exit(130));
  });
}

const deadline = setTimeout(() => {
  console.error('cluster:test: over its 10-minute budget, stopping');
  cleanup().then(() => process.exit(1), () => process.exit(1));
}, 10 * 60_000);
deadline.unref();

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`cluster:test failed: ${(e as Error).stack ?? String(e)}`);
  console.error(`logs: ${path.join(RUN, 'logs')}`);
} finally {
  await cleanup();
}
process.exit(code);
