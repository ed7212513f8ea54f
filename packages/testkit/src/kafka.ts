import { portFromEnv, probePort, runLocalScript } from './local-service.ts';

export interface StartKafkaOptions {
  /** Default: $KAFKA_PORT or 19092. */
  port?: number;
  /** Default: port + 1. */
  controllerPort?: number;
  /**
   * Extra server.properties lines (e.g. `message.max.bytes=262144`). A broker already listening on
   * the port cannot be known to have them, so with these set the port must be free.
   */
  extraConfig?: string[];
  /** JVM heap flags. Default: the script's (-Xms128m -Xmx512m). */
  heapOpts?: string;
}

export interface KafkaHandle {
  brokers: string[];
  /** True when a broker was already listening (CI, a developer's terminal); stop() then leaves it. */
  reused: boolean;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
// The first start may download the broker's jars with mvn.
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 60_000;

/** A real single-node Kafka for integration tests, via deploy/local/kafka.sh. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaHandle> {
  const port = opts.port ?? portFromEnv('KAFKA_PORT', 19092);
  const brokers = [`${HOST}:${port}`];
  const custom = opts.extraConfig !== undefined && opts.extraConfig.length > 0;
  if ((await probePort(HOST, port, 1_000)) !== undefined) {
    if (custom) throw new Error(`startKafka: port ${port} is taken; a broker with extra config (${opts.extraConfig?.join(', ')}) needs a free port`);
    return { brokers, reused: true, stop: () => Promise.resolve() };
  }
  const env: Record<string, string> = { KAFKA_PORT: String(port) };
  if (opts.controllerPort !== undefined) env['KAFKA_CONTROLLER_PORT'] = String(opts.controllerPort);
  if (custom) env['KAFKA_EXTRA_CONFIG'] = opts.extraConfig?.join('\n') ?? '';
  if (opts.heapOpts !== undefined) env['KAFKA_HEAP_OPTS'] = opts.heapOpts;
  const said = await runLocalScript('deploy/local/kafka.sh', ['start'], env, START_TIMEOUT_MS);
  if (custom && said.includes('already up')) {
    throw new Error(`startKafka: another process started a broker on ${port} first; it may lack ${opts.extraConfig?.join(', ')}`);
  }
  // Another test process started it between our probe and the script (which serializes starts):
  // that process owns it and stops it.
  if (said.includes('already up')) return { brokers, reused: true, stop: () => Promise.resolve() };
  let stopping: Promise<void> | undefined;
  return {
    brokers,
    reused: false,
    stop() {
      stopping ??= runLocalScript('deploy/local/kafka.sh', ['stop'], env, STOP_TIMEOUT_MS).then(() => undefined);
      return stopping;
    },
  };
}
