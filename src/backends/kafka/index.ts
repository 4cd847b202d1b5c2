// `eventfold/kafka`: Apache Kafka on @platformatic/kafka (an optional peer dependency).
import { KafkaDriver, type KafkaDriverOptions } from './kafka-driver.ts';

export { KafkaDriver };
export type { KafkaDriverOptions };
export type { KafkaConsumerGroupOptions } from './consumer-groups.ts';
export { kafkaProjector } from './projector.ts';
export type { KafkaProjector, KafkaProjectorOptions, ProjectorOutput, ProjectorRecord } from './projector.ts';

/** `kafka({ brokers: ['127.0.0.1:9092'], prefix: 'orders', partitions: 8 })`; pass as `createEventStore({ driver })`. */
export function kafka(options: KafkaDriverOptions = {}): KafkaDriver {
  return new KafkaDriver(options);
}
