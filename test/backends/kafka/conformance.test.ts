// The conformance suite on a real Kafka broker (scripts/services starts it on 127.0.0.1:9092):
// once with every stream in the default events topic, once with a topic per aggregate category.
import { Admin } from '@platformatic/kafka';
import { kafka, type KafkaDriverOptions } from '../../../src/backends/kafka/index.ts';
import { runConformanceSuite } from '../../conformance/suite.ts';
import { KAFKA_BROKERS } from '../../services/env.ts';

function kafkaSuite(name: string, options: KafkaDriverOptions): void {
  const prefixes = new Set<string>();
  runConformanceSuite({
    name,
    driver: (storeName) => {
      prefixes.add(storeName);
      return kafka({ brokers: KAFKA_BROKERS, prefix: storeName, partitions: 4, ...options });
    },
    cleanup: async () => {
      const admin = new Admin({ clientId: 'conformance-cleanup', bootstrapBrokers: KAFKA_BROKERS });
      try {
        const topics = (await admin.listTopics()).filter((t) => [...prefixes].some((p) => t.startsWith(`${p}.`)));
        if (topics.length > 0) await admin.deleteTopics({ topics });
        const groups = [...(await admin.listGroups()).keys()].filter((g) => [...prefixes].some((p) => g.startsWith(`${p}.`)));
        if (groups.length > 0) await admin.deleteGroups({ groups }).catch(() => undefined);
      } finally {
        await admin.close();
      }
    },
  });
}

kafkaSuite('kafka', {});
// The suite's streams are `account-…` (its aggregate) and others: both topics get traffic.
kafkaSuite('kafka (topic per category)', { categories: ['account', 'order-line'] });
