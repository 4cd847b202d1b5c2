// Deleting what Kafka tests created: the topics of each store prefix, named by the product's own
// KafkaNames (default layout: events, snapshots, index checkpoints).
import { Admin } from '@platformatic/kafka';
import { KafkaNames } from '../../../src/backends/kafka/topics.ts';
import { KAFKA_BROKERS } from '../../services/env.ts';

export async function deleteStoreTopics(prefixes: readonly string[], clientId: string): Promise<void> {
  if (prefixes.length === 0) return;
  const admin = new Admin({ clientId, bootstrapBrokers: KAFKA_BROKERS });
  try {
    const topics = new Set(await admin.listTopics());
    const mine = prefixes
      .map((p) => new KafkaNames(p))
      .flatMap((n) => [n.events, n.snapshots, n.index()])
      .filter((t) => topics.has(t));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.close();
  }
}
