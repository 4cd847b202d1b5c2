import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';

/**
 * Names of everything one store owns on the cluster. Prefixes use Kafka's topic charset
 * (`[A-Za-z0-9._-]`) and stream names never become topic names (they are record keys), so no
 * name can reach another store's topics, transactional ids or groups.
 *
 *   <prefix>.events           the log: events of streams of no configured category, key = stream id
 *   <prefix>.events-<c>       the log of aggregate category c (option `categories`), key = stream id
 *   <prefix>.snapshots        compacted: key "<streamId>/<name>" -> the latest snapshot
 *   <prefix>.index            compacted: checkpoints of the core's index of each partition of <prefix>.events
 *   <prefix>.index-<c>        … of <prefix>.events-<c>
 *   <prefix>.writer.p<n>      transactional id of the writer of partition n of <prefix>.events
 *   <prefix>.writer.<c>.p<n>  … of partition n of <prefix>.events-<c>
 *   <prefix>.<group>          consumer group holding a subscription's position
 *   <prefix>._projector.<group>             consumer group of a projector (kafkaProjector)
 *   <prefix>._projector.<group>.<instance>  transactional id of one projector instance
 *   <prefix>._projector.<group>.dlq         topic: the projector's dead letters
 *   <prefix>._writers         consumer group of the store's writers (routing/writer-group.ts)
 *   <prefix>._requests        appends routed to a partition's owner, a partition per store partition
 *   <prefix>._replies         the owners' answers
 *
 * Group names start with a letter or digit, so nothing under "<prefix>._projector." can be a
 * subscription's group; instance names have no ".", so "<group>.<instance>" is unambiguous.
 */
export class KafkaNames {
  readonly prefix: string;
  readonly events: string;
  readonly snapshots: string;
  readonly writers: string;
  readonly requests: string;
  readonly replies: string;
  constructor(prefix: string) {
    // Kafka topic names are at most 249 characters; leave room for ".snapshots".
    if (typeof prefix !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/.test(prefix) || prefix.includes('..')) {
      throw new InvalidArgumentError(
        `kafka topic prefix ${JSON.stringify(prefix)} must be 1-200 ASCII letters, digits, "_", "-" or "." (no "..", starting with a letter or digit)`,
      );
    }
    this.prefix = prefix;
    this.events = `${prefix}.events`;
    this.snapshots = `${prefix}.snapshots`;
    this.writers = `${prefix}._writers`;
    this.requests = `${prefix}._requests`;
    this.replies = `${prefix}._replies`;
  }
  /** Transactional id of the writer of a partition of the default events topic, or of a category's topic. */
  writer(partition: number, category?: string): string {
    return category === undefined ? `${this.prefix}.writer.p${partition}` : `${this.prefix}.writer.${category}.p${partition}`;
  }
  /** Topic of the index checkpoints of the default events topic, or of a category's (index-checkpoints.ts). */
  index(category?: string): string {
    return category === undefined ? `${this.prefix}.index` : `${this.prefix}.index-${category}`;
  }
  /** Events topic of an aggregate category (see layout.ts). */
  categoryEvents(category: string): string {
    return `${this.prefix}.events-${category}`;
  }
  group(group: string): string {
    return `${this.prefix}.${group}`;
  }
  projectorGroup(group: string): string {
    return `${this.prefix}._projector.${group}`;
  }
  projectorTransactionalId(group: string, instance: string): string {
    return `${this.prefix}._projector.${group}.${instance}`;
  }
  projectorDeadLetters(group: string): string {
    return `${this.prefix}._projector.${group}.dlq`;
  }
  /**
   * Consumer group id of `store.consume`'s members. Group names cannot contain ":", so this
   * never equals `group()` of any subscription.
   */
  consumerGroup(group: string): string {
    return `${this.prefix}.cg:${group}`;
  }
  deadLetters(group: string): string {
    return topicName(this.prefix, group, 'dlq');
  }
  redrive(group: string): string {
    return topicName(this.prefix, group, 'redrive');
  }
}

/** `<prefix>.<group>.<suffix>`, or with a hash of the group where that exceeds Kafka's 249 characters. */
function topicName(prefix: string, group: string, suffix: string): string {
  const name = `${prefix}.${group}.${suffix}`;
  if (name.length <= 249) return name;
  return `${prefix}.${createHash('sha256').update(group).digest('hex').slice(0, 32)}.${suffix}`;
}
