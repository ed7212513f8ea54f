import { portFromEnv, probePort, runLocalScript } from './local-service.ts';

export interface StartKafkaOptions {
  /** Default: $KAFKA_PORT or 19092. */
  port?: number;
  /** Default: port + 1. */
  controllerPort?: number;
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
  if ((await probePort(HOST, port, 1_000)) !== undefined) {
    return { brokers, reused: true, stop: () => Promise.resolve() };
  }
  const env: Record<string, string> = { KAFKA_PORT: String(port) };
  if (opts.controllerPort !== undefined) env['KAFKA_CONTROLLER_PORT'] = String(opts.controllerPort);
  const said = await runLocalScript('deploy/local/kafka.sh', ['start'], env, START_TIMEOUT_MS);
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
