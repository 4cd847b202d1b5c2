// `eventfold/kafka`: Apache Kafka on @platformatic/kafka (an optional peer dependency).
import { arg } from '../../core/arguments.ts';
import { KafkaDriver, type KafkaDriverOptions } from './kafka-driver.ts';

export { KafkaDriver };
export type { KafkaDriverOptions };
export type { KafkaConsumerGroupOptions } from './groups/consumer-groups.ts';
export { kafkaProjector } from './projector/projector.ts';
export type { KafkaProjector, KafkaProjectorOptions, ProjectorOutput, ProjectorRecord } from './projector/options.ts';

/** `kafka({ brokers: ['127.0.0.1:9092'], prefix: 'orders', partitions: 8 })`; pass as `createEventStore({ driver })`. */
export function kafka(options?: KafkaDriverOptions): KafkaDriver {
  const o = arg.options(options, 'kafka options');
  arg.optional(o.brokers, (list) => arg.arrayOf(list, 'brokers', arg.string));
  arg.optional(o.prefix, (p) => arg.string(p, 'prefix'));
  arg.optional(o.partitions, (n) => arg.positiveInt(n, 'partitions'));
  arg.optional(o.categories, (list) => arg.arrayOf(list, 'categories', arg.string));
  arg.optional(o.replicationFactor, (n) => arg.positiveInt(n, 'replicationFactor'));
  arg.optional(o.clientOptions, (c) => arg.object(c, 'clientOptions'));
  arg.optional(o.transactionTimeoutMs, (n) => arg.positiveInt(n, 'transactionTimeoutMs'));
  arg.optional(o.blockMs, (ms) => arg.nonNegative(ms, 'blockMs'));
  arg.optional(o.consumerGroups, (c) => arg.object(c, 'consumerGroups'));
  arg.optional(o.indexCheckpointEvents, (n) => arg.positiveInt(n, 'indexCheckpointEvents'));
  if (o.routing !== undefined && o.routing !== false) {
    const r = arg.object(o.routing, 'routing');
    arg.optional(r.sessionTimeoutMs, (n) => arg.positiveInt(n, 'routing.sessionTimeoutMs'));
    arg.optional(r.heartbeatIntervalMs, (n) => arg.positiveInt(n, 'routing.heartbeatIntervalMs'));
    arg.optional(r.rebalanceTimeoutMs, (n) => arg.positiveInt(n, 'routing.rebalanceTimeoutMs'));
  }
  return new KafkaDriver(o);
}
