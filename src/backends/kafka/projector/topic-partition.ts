import type { TopicLayout } from '../layout.ts';

/** Topic and Kafka partition of a store partition (a topic per category: see layout.ts). */
export function topicPartitionOf(layout: TopicLayout, partition: number): [string, number] {
  const at = layout.at(partition);
  return [at.topic, at.partition];
}
