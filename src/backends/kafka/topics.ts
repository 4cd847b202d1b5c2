import { InvalidArgumentError } from '../../core/errors.ts';

/**
 * Names of everything one store owns on the cluster. Prefixes use Kafka's topic charset
 * (`[A-Za-z0-9._-]`) and stream names never become topic names (they are record keys), so no
 * name can reach another store's topics, transactional ids or groups.
 *
 *   <prefix>.events           the log: every event of the store, key = stream id
 *   <prefix>.snapshots        compacted: key "<streamId>/<name>" -> the latest snapshot
 *   <prefix>.writer.p<n>      transactional id of the writer of events partition n
 *   <prefix>.<group>          consumer group holding a subscription's position
 */
export class KafkaNames {
  readonly prefix: string;
  readonly events: string;
  readonly snapshots: string;
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
  }
  writer(partition: number): string {
    return `${this.prefix}.writer.p${partition}`;
  }
  group(group: string): string {
    return `${this.prefix}.${group}`;
  }
}
