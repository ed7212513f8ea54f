import { parseArgs } from 'node:util';
import type { FsyncPolicy, FullPolicy, IngestClientOptions } from '@ingest/client';
import { DEFAULT_MAX_FUTURE_MS, DEFAULT_MAX_PAST_MS } from './server.ts';

export interface AgentConfig {
  host: string;
  port: number;
  token: string | undefined;
  lineProtocolApp: string;
  bodyLimitBytes: number;
  drainTimeoutMs: number;
  maxPastMs: number;
  maxFutureMs: number;
  client: IngestClientOptions;
}

interface Flag {
  env: string;
  help: string;
  def?: string;
}

/** Every flag, its environment variable and default; --help is generated from this table. */
const FLAGS = {
  endpoint: { env: 'INGEST_ENDPOINT', help: 'edge base URL (required), e.g. http://127.0.0.1:8080' },
  'api-key': { env: 'INGEST_API_KEY', help: "the agent's tenant API key (required; prefer the env var)" },
  'wal-dir': { env: 'AGENT_WAL_DIR', help: 'write-ahead log directory', def: '.data/ingest-agent/wal' },
  host: { env: 'AGENT_HOST', help: 'listen address', def: '127.0.0.1' },
  port: { env: 'AGENT_PORT', help: 'listen port', def: '8687' },
  token: { env: 'AGENT_TOKEN', help: 'require this token from local producers (Bearer/Token header or ?p=)' },
  'line-protocol-app': { env: 'AGENT_LINE_PROTOCOL_APP', help: 'app of metrics from line protocol', def: 'telegraf' },
  'body-limit': { env: 'AGENT_BODY_LIMIT', help: 'request body limit, after decompression (bytes; KiB/MiB/GiB suffixes)', def: '8MiB' },
  'max-past-ms': { env: 'AGENT_MAX_PAST_MS', help: "line-protocol points older than this are refused (the normalizer's window; match a tenant's own limit)", def: String(DEFAULT_MAX_PAST_MS) },
  'max-future-ms': { env: 'AGENT_MAX_FUTURE_MS', help: 'line-protocol points further ahead than this are refused', def: String(DEFAULT_MAX_FUTURE_MS) },
  'max-disk-bytes': { env: 'AGENT_MAX_DISK_BYTES', help: 'WAL disk budget', def: '256MiB' },
  'segment-bytes': { env: 'AGENT_SEGMENT_BYTES', help: 'WAL segment size', def: '16MiB' },
  fsync: { env: 'AGENT_FSYNC', help: 'always | perBatch | interval', def: 'perBatch' },
  'full-policy': { env: 'AGENT_FULL_POLICY', help: 'block | dropOldest | rejectNew (block: requests wait, then 503)', def: 'block' },
  'flush-interval-ms': { env: 'AGENT_FLUSH_INTERVAL_MS', help: 'buffer → WAL at least this often', def: '200' },
  'max-batch': { env: 'AGENT_MAX_BATCH', help: 'entries per request to the edge', def: '500' },
  'max-in-flight': { env: 'AGENT_MAX_IN_FLIGHT', help: 'requests to the edge at once', def: '4' },
  'max-retries': { env: 'AGENT_MAX_RETRIES', help: 'retries per batch, -1 = forever', def: '-1' },
  'backoff-max-ms': { env: 'AGENT_BACKOFF_MAX_MS', help: 'backoff ceiling', def: '30000' },
  'drain-timeout-ms': { env: 'AGENT_DRAIN_TIMEOUT_MS', help: 'on SIGTERM, time given to deliver before exiting (the WAL keeps the rest)', def: '5000' },
} as const satisfies Record<string, Flag>;

type FlagName = keyof typeof FLAGS;

export function helpText(): string {
  const rows = Object.entries(FLAGS).map(([name, f]: [string, Flag]) => {
    const def = f.def !== undefined ? ` (default ${f.def})` : '';
    return `  --${name.padEnd(20)} ${f.env.padEnd(24)} ${f.help}${def}`;
  });
  return [
    'ingest-agent — local store-and-forward sidecar for the telemetry ingest edge',
    '',
    'Listens on 127.0.0.1 and accepts:',
    '  POST /v2/ingest             JSON array, {"entries": [...]}, or NDJSON; gzip/deflate (same contract as the edge)',
    '  POST /write, /api/v2/write  Influx line protocol (Telegraf outputs.influxdb / outputs.http); ?precision=ns|us|ms|s',
    '  GET  /healthz /readyz /stats /metrics /ping',
    'Every entry goes to an on-disk write-ahead log first, then to the edge with the agent\'s own key.',
    'Line protocol: 204 only when every line was recorded; otherwise the good lines are kept and a 400',
    '(Influx\'s {code, message, line}) names the first refused line: unparseable, only string fields,',
    'or a timestamp outside --max-past-ms / --max-future-ms.',
    '',
    'Usage: ingest-agent [flags]      (each flag can also be set by the environment variable shown)',
    '',
    ...rows,
    '  --help                                               print this and exit',
    '  --version                                            print the version and exit',
  ].join('\n');
}

/** Flags win over the environment, which wins over defaults. Throws an Error naming the bad key. */
export function parseAgentConfig(argv: readonly string[], env: Record<string, string | undefined>): AgentConfig | 'help' | 'version' {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' }, version: { type: 'boolean' } };
  for (const name of Object.keys(FLAGS)) options[name] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    // A leading "--" is what `pnpm … agent -- --flag` passes along; it separates nothing here.
    const args = argv[0] === '--' ? argv.slice(1) : [...argv];
    values = parseArgs({ args, options, allowPositionals: false, strict: true }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new Error(`${(e as Error).message} (see --help)`);
  }
  if (values['help']) return 'help';
  if (values['version']) return 'version';
  const get = (name: FlagName): string | undefined => {
    const v = values[name];
    if (typeof v === 'string') return v;
    const f: Flag = FLAGS[name];
    return env[f.env] ?? f.def;
  };
  const need = (name: FlagName): string => {
    const v = get(name);
    if (v === undefined || v === '') throw new Error(`--${name} (or ${FLAGS[name].env}) is required (see --help)`);
    return v;
  };
  const int = (name: FlagName, min: number): number => {
    const raw = need(name);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} / ${FLAGS[name].env}: ${raw} is not an integer >= ${min}`);
    return n;
  };
  const bytes = (name: FlagName): number => {
    const raw = need(name);
    const m = /^(\d+)\s*(B|KiB|MiB|GiB)?$/i.exec(raw.trim());
    if (!m) throw new Error(`--${name} / ${FLAGS[name].env}: ${raw} is not a byte size (e.g. 65536, 64KiB, 16MiB)`);
    const mult = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1;
    return Number(m[1]) * mult;
  };
  const oneOf = <T extends string>(name: FlagName, allowed: readonly T[]): T => {
    const v = need(name);
    if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${name} / ${FLAGS[name].env}: ${v} is not one of ${allowed.join(', ')}`);
    return v as T;
  };

  const endpoint = need('endpoint');
  try {
    new URL(endpoint);
  } catch {
    throw new Error(`--endpoint / INGEST_ENDPOINT: ${endpoint} is not a URL`);
  }
  const port = int('port', 0);
  if (port > 65535) throw new Error(`--port / AGENT_PORT: ${port} is not a port`);
  const maxRetries = Number(need('max-retries'));
  if (!Number.isInteger(maxRetries) || maxRetries < -1) throw new Error('--max-retries / AGENT_MAX_RETRIES must be -1 or a non-negative integer');
  const fsync = oneOf<FsyncPolicy>('fsync', ['always', 'perBatch', 'interval']);
  const fullPolicy = oneOf<FullPolicy>('full-policy', ['block', 'dropOldest', 'rejectNew']);
  return {
    host: need('host'),
    port,
    token: get('token') || undefined,
    lineProtocolApp: need('line-protocol-app'),
    bodyLimitBytes: bytes('body-limit'),
    drainTimeoutMs: int('drain-timeout-ms', 0),
    maxPastMs: int('max-past-ms', 0),
    maxFutureMs: int('max-future-ms', 0),
    client: {
      endpoint,
      apiKey: need('api-key'),
      walDir: need('wal-dir'),
      maxDiskBytes: bytes('max-disk-bytes'),
      segmentBytes: bytes('segment-bytes'),
      fsync,
      fullPolicy,
      flushIntervalMs: int('flush-interval-ms', 1),
      maxBatchSize: int('max-batch', 1),
      maxInFlight: int('max-in-flight', 1),
      maxRetries,
      backoffMaxMs: int('backoff-max-ms', 1),
    },
  };
}
