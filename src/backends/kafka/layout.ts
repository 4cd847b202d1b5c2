import { InvalidArgumentError } from '../../core/errors.ts';
import { partitionOf } from '../../core/partition.ts';
import type { KafkaNames } from './topics.ts';

/** One Kafka partition of one events topic. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

interface EventsTopic {
  readonly topic: string;
  /** undefined for the store's default topic. */
  readonly category: string | undefined;
  /** Store partition number of this topic's partition 0. */
  readonly first: number;
}

const CATEGORY = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,98}[A-Za-z0-9_])?$/;

/**
 * Where streams live: a topic per aggregate category, and the store's partition numbers.
 *
 * The category of a stream is the longest configured category `c` such that the stream id
 * starts with `c-` (an aggregate named `order` writes streams `order-<id>`); its events go to
 * `<prefix>.events-<c>`. Streams of no configured category go to the default topic
 * `<prefix>.events`. Every topic has the same number of partitions, and the key (stream id)
 * picks the partition with Kafka's murmur2, so plain Kafka producers agree.
 *
 * The core sees one partition space (positions are a vector over it): the default topic's
 * partitions are 0…n-1, then each category in the configured order takes the next n. So the
 * list is append-only: a new category goes at the end (existing numbers stay), and dropping a
 * category that has a topic is refused at open (its events would vanish from reads).
 * Checkpoints are stored per topic-partition (consumer-group offsets), so they survive any
 * change of numbering; positions an application keeps itself do not survive a reorder.
 */
export class TopicLayout {
  readonly perTopic: number;
  readonly topics: readonly EventsTopic[];
  readonly #byTopic: Map<string, EventsTopic>;
  /** Longest first, so `order-line` wins over `order` for `order-line-7`. */
  readonly #categories: readonly EventsTopic[];

  constructor(names: KafkaNames, perTopic: number, categories: readonly string[] = []) {
    const seen = new Set<string>();
    for (const category of categories) {
      if (typeof category !== 'string' || !CATEGORY.test(category)) {
        throw new InvalidArgumentError(
          `kafka category ${JSON.stringify(category)} must be 1-100 ASCII letters, digits, "_" or "-" (not first or last)`,
        );
      }
      if (seen.has(category)) throw new InvalidArgumentError(`kafka category "${category}" is listed twice`);
      seen.add(category);
    }
    this.perTopic = perTopic;
    this.topics = [
      { topic: names.events, category: undefined, first: 0 },
      ...categories.map((category, i) => ({ topic: names.categoryEvents(category), category, first: (i + 1) * perTopic })),
    ];
    for (const t of this.topics) {
      if (t.topic.length > 249) throw new InvalidArgumentError(`kafka topic name ${t.topic} is longer than 249 characters`);
    }
    this.#byTopic = new Map(this.topics.map((t) => [t.topic, t]));
    this.#categories = this.topics.filter((t) => t.category !== undefined).sort((a, b) => b.category!.length - a.category!.length);
  }

  /** Partitions of the whole store (all topics). */
  get partitions(): number {
    return this.perTopic * this.topics.length;
  }

  topicOf(streamId: string): EventsTopic {
    return this.#categories.find((t) => streamId.startsWith(`${t.category}-`)) ?? this.topics[0]!;
  }

  /** Store partition of a stream. */
  partitionOf(streamId: string): number {
    return this.topicOf(streamId).first + partitionOf(streamId, this.perTopic);
  }

  /** The topic and Kafka partition behind a store partition. */
  at(partition: number): TopicPartition & { readonly category: string | undefined } {
    const t = this.topics[Math.floor(partition / this.perTopic)];
    if (!t || !Number.isInteger(partition) || partition < 0) {
      throw new InvalidArgumentError(`partition must be an integer from 0 to ${this.partitions - 1}`);
    }
    return { topic: t.topic, partition: partition - t.first, category: t.category };
  }

  /** Store partition of a topic's partition; undefined for a topic that is not one of ours. */
  partitionFor(topic: string, partition: number): number | undefined {
    const t = this.#byTopic.get(topic);
    return t && partition >= 0 && partition < this.perTopic ? t.first + partition : undefined;
  }

  /** Every store partition, grouped by topic (for OffsetCommit and friends). */
  byTopic(): { topic: string; partitions: { partition: number; store: number }[] }[] {
    return this.topics.map((t) => ({
      topic: t.topic,
      partitions: Array.from({ length: this.perTopic }, (_, p) => ({ partition: p, store: t.first + p })),
    }));
  }
}
