// The topics a projector writes to: names checked, existence checked, created when allowed.
import type { Admin, MessageToProduce } from '@platformatic/kafka';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { Event } from '../../../core/event-type.ts';
import { ensureTopic, KEEP_FOREVER } from '../admin.ts';
import type { KafkaDriver } from '../kafka-driver.ts';
import type { KafkaProjectorOptions } from './options.ts';

/** Whose outputs these are: the projector's group and dead letters, on the driver's topics. */
export interface OutputOwner {
  readonly group: string;
  readonly deadLetterTopic: string;
  readonly driver: KafkaDriver;
}

/** Refuses a topic name Kafka would refuse, and the store's own topics (events, snapshots, dead letters). */
export function checkOutputName(topic: unknown, owner: OutputOwner): void {
  if (typeof topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(topic) || topic === '.' || topic === '..') {
    throw new InvalidArgumentError(`projector "${owner.group}": ${JSON.stringify(topic)} is not a valid Kafka topic name`);
  }
  const { names, layout } = owner.driver;
  const owned = topic === names.snapshots || topic === owner.deadLetterTopic || layout.partitionFor(topic, 0) !== undefined;
  if (owned) {
    throw new InvalidArgumentError(`projector "${owner.group}": cannot write to ${topic}, which the store owns`);
  }
}

/** Topics known to exist; missing ones are created (dead letters always, outputs with `createOutputs`) or refused. */
export class OutputTopics {
  readonly #admin: Admin;
  readonly #owner: OutputOwner;
  readonly #options: Pick<KafkaProjectorOptions<Event>, 'outputs' | 'createOutputs'>;
  readonly #replicationFactor: number;
  readonly #known = new Set<string>();

  constructor(
    admin: Admin,
    owner: OutputOwner,
    options: Pick<KafkaProjectorOptions<Event>, 'outputs' | 'createOutputs'>,
    replicationFactor: number,
  ) {
    this.#admin = admin;
    this.#owner = owner;
    this.#options = options;
    this.#replicationFactor = replicationFactor;
  }

  /** Before the first batch: the dead-letter topic and the declared `outputs`. */
  async prepare(): Promise<void> {
    const existing = new Set(await this.#admin.listTopics());
    for (const topic of existing) this.#known.add(topic);
    if (!existing.has(this.#owner.deadLetterTopic)) {
      // Dead letters must not expire unseen: kept like the events.
      await this.#createTopic(this.#owner.deadLetterTopic, this.#owner.driver.partitions, KEEP_FOREVER);
    }
    const missing = (this.#options.outputs ?? []).filter((topic) => !existing.has(topic));
    await this.#createOutputs(missing);
  }

  /** Every topic these messages go to exists (or is created with `createOutputs`). */
  async ensure(messages: readonly MessageToProduce[]): Promise<void> {
    const unknown = [...new Set(messages.map((message) => message.topic).filter((topic) => !this.#known.has(topic)))];
    if (unknown.length === 0) return;
    for (const topic of unknown) checkOutputName(topic, this.#owner);
    const existing = new Set(await this.#admin.listTopics());
    for (const topic of existing) this.#known.add(topic);
    await this.#createOutputs(unknown.filter((topic) => !existing.has(topic)));
  }

  async #createOutputs(missing: readonly string[]): Promise<void> {
    if (missing.length === 0) return;
    const create = this.#options.createOutputs;
    if (!create) {
      const many = missing.length > 1;
      throw new InvalidArgumentError(
        `projector "${this.#owner.group}": output topic${many ? 's' : ''} ${missing.map((topic) => JSON.stringify(topic)).join(', ')} do${many ? '' : 'es'} not exist; create ${many ? 'them' : 'it'}, or pass createOutputs`,
      );
    }
    for (const topic of missing) await this.#createTopic(topic, create.partitions, create.configs ?? {});
  }

  async #createTopic(topic: string, partitions: number, configs: Readonly<Record<string, string>>): Promise<void> {
    await ensureTopic(this.#admin, { topic, partitions, replicas: this.#replicationFactor, configs });
    this.#known.add(topic);
  }
}
