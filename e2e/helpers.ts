import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openLog, type DurableLog, type StoredMessage } from '@ingest/log';
import { TelemetryStore } from '@ingest/storage';
import { afterAll, beforeAll } from 'vitest';
import { startInProcessStack, startKafka, type InProcessStack, type InProcessStackOptions } from '@ingest/testkit';

export type Mode = 'embedded' | 'kafka';
export const MODES: Mode[] = ['embedded', 'kafka'];

export interface ModeEnv {
  env: Record<string, string>;
  /** Opens the log the stack writes, for reading topics in assertions. */
  readLog(dataDir: string): DurableLog;
  stop(): Promise<void>;
}

/** Per-mode backend env. Kafka runs get their own topics and group so runs never see each other. */
export async function modeEnv(mode: Mode): Promise<ModeEnv> {
  if (mode === 'embedded') {
    return {
      env: {},
      readLog: (dataDir) => openLog({ dir: path.join(dataDir, 'log'), partitions: 3, fsync: 'never', clientId: 'e2e-read', readOnly: true }),
      stop: async () => undefined,
    };
  }
  const kafka = await startKafka();
  const run = randomBytes(4).toString('hex');
  const env = {
    KAFKA_BROKERS: kafka.brokers.join(','),
    LOG_TOPIC: `telemetry.v2.${run}`,
    LOG_DLQ_TOPIC: `telemetry.v2.dlq.${run}`,
    LOADER_GROUP: `loader-${run}`,
    // The test broker is a single node; the distributed defaults (3 / 2) could never be met.
    KAFKA_REPLICATION_FACTOR: '1',
    KAFKA_MIN_INSYNC_REPLICAS: '1',
  };
  return {
    env,
    readLog: () => openLog({ kafkaBrokers: kafka.brokers, dir: '', partitions: 3, fsync: 'never', clientId: 'e2e-read' }),
    stop: () => kafka.stop(),
  };
}

/** chDB allows one data directory per process, so a test file shares one store between stacks. */
export async function sharedStore(): Promise<TelemetryStore> {
  const dir = await mkdtemp(path.join(tmpdir(), 'e2e-chdb-'));
  const store = await TelemetryStore.open({ chdbPath: dir });
  await store.migrate();
  return store;
}

/** Every message of a topic, all partitions. */
export async function readTopic(log: DurableLog, topic: string): Promise<StoredMessage[]> {
  const admin = log.admin();
  const out: StoredMessage[] = [];
  for (const p of await admin.partitions(topic)) {
    let off = p.low;
    while (off < p.high) {
      const got = await admin.read(topic, p.partition, off, 5000);
      if (got.length === 0) break;
      out.push(...got);
      off = (got[got.length - 1]?.offset ?? off) + 1;
    }
  }
  return out;
}

export function tenantId(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/**
 * Wraps a real log so a test can hold its appends (the "log paused" fault) and let them go. Reads,
 * consumers and admin pass straight through; held appends complete for real on release.
 */
export function holdable(log: DurableLog): { log: DurableLog; hold(): void; release(): void } {
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const wrapped: DurableLog = {
    kind: log.kind,
    producer() {
      const p = log.producer();
      return {
        send: async (topic, messages) => {
          if (gate) await gate;
          return p.send(topic, messages);
        },
        close: () => p.close(),
      };
    },
    consumer: (o) => log.consumer(o),
    admin: () => log.admin(),
    close: () => log.close(),
  };
  return {
    log: wrapped,
    hold() {
      gate ??= new Promise<void>((r) => (open = r));
    },
    release() {
      open?.();
      gate = undefined;
    },
  };
}

/**
 * For an e2e file of one tenant: a stack on the file's shared store, started before its tests and
 * closed after them; `got` receives the store, the stack and the tenant's API key.
 */
export function useTenantStack(tenant: string, got: (s: { store: TelemetryStore; stack: InProcessStack; key: string }) => void, opts: Omit<InProcessStackOptions, 'store'> = {}): void {
  let store: TelemetryStore | undefined;
  let stack: InProcessStack | undefined;
  beforeAll(async () => {
    store = await sharedStore();
    stack = await startInProcessStack({ ...opts, store });
    got({ store, stack, key: await stack.tenant(tenant) });
  });
  afterAll(async () => {
    await stack?.close();
    await store?.close();
  });
}

/** A tenant's rows, read exactly (FINAL). `columns` and `orderBy` are the test's own constants, never input. */
export async function tenantRows<T>(store: TelemetryStore, tenant: string, columns: string, orderBy: string): Promise<T[]> {
  const rs = await store.client.query({ query: `SELECT ${columns} FROM telemetry FINAL WHERE tenant_id = {t:String} ORDER BY ${orderBy}`, query_params: { t: tenant }, format: 'JSONEachRow' });
  return rs.json<T>();
}
