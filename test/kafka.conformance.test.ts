// The conformance suite on a real Kafka broker (scripts/services starts it on 127.0.0.1:9092).
import { Admin } from '@platformatic/kafka';
import { kafka } from '../src/backends/kafka/index.ts';
import { runConformanceSuite } from './conformance/suite.ts';
import { KAFKA_BROKERS } from './services/env.ts';

const prefixes = new Set<string>();
runConformanceSuite({
  name: 'kafka',
  driver: (storeName) => {
    prefixes.add(storeName);
    return kafka({ brokers: KAFKA_BROKERS, prefix: storeName, partitions: 4 });
  },
  cleanup: async () => {
    const admin = new Admin({ clientId: 'conformance-cleanup', bootstrapBrokers: KAFKA_BROKERS });
    try {
      const existing = new Set(await admin.listTopics());
      const topics = [...prefixes].flatMap((p) => [`${p}.events`, `${p}.snapshots`]).filter((t) => existing.has(t));
      if (topics.length > 0) await admin.deleteTopics({ topics });
      const groups = [...(await admin.listGroups()).keys()].filter((g) => [...prefixes].some((p) => g.startsWith(`${p}.`)));
      if (groups.length > 0) await admin.deleteGroups({ groups }).catch(() => undefined);
    } finally {
      await admin.close();
    }
  },
});
