import { Kafka } from 'kafkajs';
import {
  LogUnavailableError,
  type ConsumerOptions,
  type DurableLog,
  type LogAdmin,
  type LogConsumer,
  type LogProducer,
} from '../types.ts';
import { KafkaLogAdmin } from './admin.ts';
import { KafkaLogConsumer } from './consumer.ts';
import { TopicLimits } from './limits.ts';
import { backendLogger, kafkajsLogCreator, toKafkajsLevel } from './logging.ts';
import { resolveOptions, type KafkaLogOptions } from './options.ts';
import { KafkaLogProducer } from './producer.ts';

export type { KafkaLogOptions } from './options.ts';

/**
 * The distributed backend of DurableLog: Apache Kafka through kafkajs. Producers are idempotent
 * with acks=all; consumers commit a batch's offsets only after its handler resolved. Every kafkajs
 * failure surfaces as a LogUnavailableError, never as an unhandled rejection.
 */
export function createKafkaLog(options: KafkaLogOptions): DurableLog {
  const opts = resolveOptions(options);
  const logger = backendLogger(opts.log, opts.logLevel);
  const kafka = new Kafka({
    brokers: opts.brokers,
    clientId: opts.clientId,
    connectionTimeout: opts.connectionTimeoutMs,
    requestTimeout: opts.requestTimeoutMs,
    retry: opts.retry,
    logLevel: toKafkajsLevel(opts.logLevel),
    logCreator: kafkajsLogCreator(opts.log),
  });

  const open = new Set<{ close(): Promise<void> }>();
  // One per log: ensureTopic records each topic's size limit at start, producers size requests by
  // it, and a topic no admin described is looked up through an admin of the log's own.
  let limitsAdmin: KafkaLogAdmin | undefined;
  const limits: TopicLimits = new TopicLimits((topic) => {
    // An admin made after close() would never be closed.
    if (closing) return Promise.reject(new LogUnavailableError('kafka: log is closed'));
    limitsAdmin ??= new KafkaLogAdmin(kafka, opts, logger, limits, () => undefined);
    return limitsAdmin.maxMessageBytes(topic);
  }, logger);
  let closing: Promise<void> | undefined;

  const assertOpen = (): void => {
    if (closing) throw new LogUnavailableError('kafka: log is closed');
  };

  return {
    kind: 'kafka',

    producer(): LogProducer {
      assertOpen();
      const producer: KafkaLogProducer = new KafkaLogProducer(kafka, opts, logger, limits, () => open.delete(producer));
      open.add(producer);
      return producer;
    },

    consumer(consumerOptions: ConsumerOptions): LogConsumer {
      assertOpen();
      const consumer: KafkaLogConsumer = new KafkaLogConsumer(kafka, { ...consumerOptions }, opts, logger, () =>
        open.delete(consumer),
      );
      open.add(consumer);
      return consumer;
    },

    admin(): LogAdmin {
      assertOpen();
      const admin: KafkaLogAdmin = new KafkaLogAdmin(kafka, opts, logger, limits, () => open.delete(admin));
      open.add(admin);
      return admin;
    },

    close(): Promise<void> {
      closing ??= Promise.allSettled([...open, ...(limitsAdmin ? [limitsAdmin] : [])].map((c) => c.close())).then(() => undefined);
      return closing;
    },
  };
}
