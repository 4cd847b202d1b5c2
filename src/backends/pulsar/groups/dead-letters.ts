import type { DeadLetter, Delivery } from '../../../core/driver.ts';
import type { PulsarClient } from '../client/client.ts';
import type { Producer } from '../client/producer.ts';
import { TransactionCoordinators, type TxnId } from '../client/transactions.ts';
import type { PulsarLog } from '../log.ts';
import type { PulsarNames } from '../records.ts';
import type { GroupAdmin } from './group-admin.ts';
import { letterMessage, type OutgoingMessage, readLetter, redriveCopy, redriveMarker } from './letters.ts';
import type { OpenEntry } from './member.ts';

/** A transaction the process dies in is aborted by the coordinator after this long (and its entry delivered again). */
const TXN_TIMEOUT_MS = 10_000;

/** Read when used (the driver connects after it is made). */
export interface DeadLettersContext {
  readonly client: PulsarClient;
  readonly names: PulsarNames;
  readonly log: PulsarLog;
}

/**
 * A group's dead letters: `<prefix>-cg=<group>-dlq` gets the letter in one transaction with
 * the ack of its entry (when the event is the entry's last unsettled one), so a crash between
 * the two steps leaves neither: the entry is delivered again and dead-lettered once. `redrive`
 * copies letters to `<prefix>-cg=<group>-redrive` (read by the group's members) and marks them
 * redriven, in one transaction; `list` reads the DLQ and drops marked letters.
 */
export class DeadLetters {
  readonly #ctx: DeadLettersContext;
  readonly #admin: GroupAdmin;
  readonly #producers = new Map<string, Promise<Producer>>();
  #coordinators: TransactionCoordinators | undefined;

  constructor(ctx: DeadLettersContext, admin: GroupAdmin) {
    this.#ctx = ctx;
    this.#admin = admin;
  }

  /** Writes the letter; acks `entry` with it when `last` (its other events are settled). */
  async write(group: string, entry: OpenEntry, delivery: Delivery, reason: string, last: boolean): Promise<void> {
    const dlq = this.#ctx.names.deadLetters(group);
    await this.#admin.ensureTopics(group);
    await this.#transaction(
      [dlq],
      last ? [{ topic: entry.source.topic, subscription: this.#ctx.names.subscription(group) }] : [],
      async (txn) => {
        await this.#send(dlq, letterMessage(delivery.event, reason, delivery.deliveries), txn);
        if (last) await entry.source.consumer.ackInTransaction(entry.id, txn);
      },
    );
  }

  async list(group: string, limit: number): Promise<DeadLetter[]> {
    return [...(await this.#live(group)).values()].slice(0, limit);
  }

  /** In one transaction: a copy of each letter to the redrive topic and a "redriven" marker to the DLQ. */
  async redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    const letters = await this.#live(group);
    const chosen = ids === undefined ? [...letters.values()] : ids.map((id) => letters.get(id)).filter((l) => l !== undefined);
    if (chosen.length === 0) return 0;
    const { names } = this.#ctx;
    await this.#transaction([names.redrive(group), names.deadLetters(group)], [], async (txn) => {
      for (const letter of chosen) {
        await this.#send(names.redrive(group), redriveCopy(letter), txn);
        await this.#send(names.deadLetters(group), redriveMarker(letter.id), txn);
      }
    });
    return chosen.length;
  }

  async close(): Promise<void> {
    const producers = [...this.#producers.values()];
    this.#producers.clear();
    await Promise.allSettled(producers.map(async (p) => (await p).close()));
  }

  /** Letters of the DLQ without a redrive marker, oldest first, by id. */
  async #live(group: string): Promise<Map<string, DeadLetter>> {
    await this.#admin.ensureTopics(group);
    const topic = this.#ctx.names.deadLetters(group);
    const letters = new Map<string, DeadLetter>();
    for (let at = 0n; ; ) {
      const page = await this.#ctx.log.page(topic, at, 500);
      for (const message of page.messages) {
        const read = readLetter(message);
        if (read === undefined) continue;
        if ('redriven' in read) letters.delete(read.redriven);
        else letters.set(read.letter.id, read.letter);
      }
      if (page.end || page.next <= at) break;
      at = page.next;
    }
    return letters;
  }

  /** Runs `fn` in a transaction over these topics and subscriptions: committed if it returns, aborted if it throws. */
  async #transaction(
    topics: readonly string[],
    subscriptions: readonly { topic: string; subscription: string }[],
    fn: (txn: TxnId) => Promise<void>,
  ): Promise<void> {
    this.#coordinators ??= new TransactionCoordinators(this.#ctx.client);
    const tc = this.#coordinators;
    const txn = await tc.begin(TXN_TIMEOUT_MS);
    try {
      await tc.addPartitions(txn, topics);
      if (subscriptions.length > 0) await tc.addSubscriptions(txn, subscriptions);
      await fn(txn);
    } catch (error) {
      await tc.abort(txn).catch(() => undefined);
      throw error;
    }
    await tc.commit(txn);
  }

  async #send(topic: string, message: OutgoingMessage, txn: TxnId): Promise<void> {
    let producer = this.#producers.get(topic);
    if (!producer) {
      producer = this.#ctx.client.createProducer({ topic });
      this.#producers.set(topic, producer);
      producer.catch(() => this.#producers.delete(topic));
    }
    await (await producer).send(message.payload, { properties: message.properties, txn });
  }
}
