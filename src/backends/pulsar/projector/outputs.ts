// The topics a projector writes to: names checked and resolved, made when missing, one producer each.
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { PulsarAdmin } from '../admin.ts';
import type { PulsarClient } from '../client/client.ts';
import type { Producer } from '../client/producer.ts';
import type { PulsarNames } from '../records.ts';

/** A tenant, namespace or topic segment: the driver's own name rule (pulsar-driver.ts), partition suffixes included. */
const SEGMENT = /^[A-Za-z0-9_.=:-]{1,200}$/;

/** The full topic name of a handler's `topic`, refused when malformed or one of the store's own. */
export function outputTopic(topic: unknown, names: PulsarNames, group: string): string {
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`projector "${group}": output topic ${JSON.stringify(topic)?.slice(0, 200)} ${why}`);
  };
  if (typeof topic !== 'string' || topic === '') return bad('must be a non-empty string');
  let full: string;
  if (topic.startsWith('persistent://')) {
    const segments = topic.slice('persistent://'.length).split('/');
    if (segments.length !== 3) bad('must be persistent://tenant/namespace/topic');
    for (const segment of segments) if (!SEGMENT.test(segment) || /^\.+$/.test(segment)) bad('has a segment that is not a valid name');
    full = topic;
  } else {
    if (!SEGMENT.test(topic) || /^\.+$/.test(topic)) bad('must be 1-200 of letters, digits and _ . = : - (or a persistent:// name)');
    full = `persistent://${names.namespace}/${topic}`;
  }
  if (names.owns(full)) bad(`is one of the store's own topics (${names.prefix}-… in ${names.namespace})`);
  return full;
}

/** Producers of the output (and dead-letter) topics, made on first use. */
export class OutputProducers {
  readonly #client: PulsarClient;
  readonly #admin: PulsarAdmin;
  readonly #group: string;
  readonly #producers = new Map<string, Promise<Producer>>();

  constructor(client: PulsarClient, admin: PulsarAdmin, group: string) {
    this.#client = client;
    this.#admin = admin;
    this.#group = group;
  }

  /** The producer of `topic` (a full name): the topic is made if missing; a partitioned one is refused (name a partition). */
  producer(topic: string): Promise<Producer> {
    let producer = this.#producers.get(topic);
    if (!producer) {
      producer = this.#open(topic);
      this.#producers.set(topic, producer);
      producer.catch(() => this.#producers.delete(topic));
    }
    return producer;
  }

  async #open(topic: string): Promise<Producer> {
    if (!/-partition-\d+$/.test(topic)) {
      await this.#admin.ensureTopic(topic);
      const partitions = await this.#client.partitions(topic);
      if (partitions > 0) {
        throw new InvalidArgumentError(
          `projector "${this.#group}": output topic ${topic} is partitioned (${partitions}); name one of its partitions, ${topic}-partition-<n>`,
        );
      }
    }
    return this.#client.createProducer({ topic });
  }

  async close(): Promise<void> {
    const producers = [...this.#producers.values()];
    this.#producers.clear();
    await Promise.allSettled(producers.map(async (p) => (await p).close()));
  }
}
