import type { DeadLetter, Delivery } from '../../../core/driver.ts';
import { hasApiError } from '../errors.ts';
import type { OutgoingRecord } from '../records.ts';
import type { KafkaGroupContext } from './context.ts';
import type { DeliveryCounts } from './delivery-counts.ts';
import type { GroupAdmin } from './group-admin.ts';
import { letterRecord, readLetterRecord, redriveCopy, redriveMarker } from './letter-records.ts';
import { STALE_GENERATION } from './member.ts';
import type { Membership } from './membership.ts';
import { parseReceipt } from './receipts.ts';
import type { GroupTransactions } from './transactions.ts';

/**
 * The group's dead letters: `<prefix>.<group>.dlq` gets the letter in one transaction with the
 * group's offset; `redrive` copies letters to `<prefix>.<group>.redrive` (delivered again by the
 * group's members) and marks them redriven; `list` reads the DLQ and drops marked letters.
 */
export class DeadLetters {
  readonly #ctx: KafkaGroupContext;
  readonly #membership: Membership;
  readonly #counts: DeliveryCounts;
  readonly #admin: GroupAdmin;
  readonly #transactions: GroupTransactions;

  constructor(ctx: KafkaGroupContext, membership: Membership, counts: DeliveryCounts, admin: GroupAdmin, transactions: GroupTransactions) {
    this.#ctx = ctx;
    this.#membership = membership;
    this.#counts = counts;
    this.#admin = admin;
    this.#transactions = transactions;
  }

  async deadLetter(group: string, delivery: Delivery, reason: string): Promise<void> {
    const receipt = parseReceipt(delivery.receipt);
    const member = this.#membership.find(group, receipt.consumer);
    if (!member) return; // it left the group: the next owner delivers (and judges) the event again
    await member.exclusive(async () => {
      member.lastActive = Date.now();
      await this.#membership.sync(member);
      for (let attempt = 0; ; attempt++) {
        const state = member.partitionBySerial(receipt.serial);
        if (!state) return;
        const rest = state.inFlight.filter((offset) => offset !== receipt.offset);
        const target = rest[0] ?? state.next;
        const commitTo = target > state.committed ? target : undefined;
        const letter = letterRecord(this.#ctx.names.deadLetters(group), delivery.event, reason, delivery.deliveries);
        try {
          await this.#transactions.run(group, async (tx) => {
            await tx.send({ messages: [letter as never] });
            if (commitTo !== undefined) {
              await tx.addConsumer(member.consumer);
              await tx.addOffset({
                topic: state.topic,
                partition: state.partition,
                offset: commitTo - 1n, // TxnOffsetCommit commits offset + 1
                metadata: {
                  consumer: {
                    groupId: member.consumer.groupId,
                    generationId: member.generation,
                    memberId: member.memberId,
                    coordinatorId: member.consumer.coordinatorId,
                  },
                },
              } as never);
            }
          });
        } catch (error) {
          // A member that lost the partition cannot commit it: the whole transaction (letter
          // included) is aborted, and the new owner delivers the event again.
          if (hasApiError(error, ...STALE_GENERATION) && attempt < 3) {
            await this.#membership.awaitRejoin(member);
            continue;
          }
          throw error;
        }
        state.inFlight.splice(0, state.inFlight.length, ...rest);
        this.#counts.forget(group, state, receipt.offset);
        if (commitTo !== undefined) {
          state.committed = commitTo;
          state.recorded = null;
        }
        return;
      }
    });
  }

  async list(group: string, limit: number): Promise<DeadLetter[]> {
    const letters = await this.#liveLetters(group);
    return [...letters.values()].slice(0, limit);
  }

  /** In one transaction: a copy of each letter to the redrive topic and a "redriven" marker to the DLQ. */
  async redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    const letters = await this.#liveLetters(group);
    const chosen = ids === undefined ? [...letters.values()] : ids.map((id) => letters.get(id)).filter((letter) => letter !== undefined);
    if (chosen.length === 0) return 0;
    const names = this.#ctx.names;
    const messages: OutgoingRecord[] = [];
    for (const letter of chosen) {
      messages.push(redriveCopy(names.redrive(group), letter));
      messages.push(redriveMarker(names.deadLetters(group), letter.id));
    }
    await this.#transactions.run(group, async (tx) => {
      await tx.send({ messages: messages as never });
    });
    return chosen.length;
  }

  /** Letters of the group's DLQ without a redrive marker, oldest first, by id (their DLQ offset). */
  async #liveLetters(group: string): Promise<Map<string, DeadLetter>> {
    const { admin, log, described } = await this.#admin.sharedClient();
    const topic = this.#ctx.names.deadLetters(group);
    if (!described.has(topic)) {
      if (!(await admin.listTopics()).includes(topic)) return new Map();
      await log.describe(topic, 1);
      described.add(topic);
    }
    const letters = new Map<string, DeadLetter>();
    for (let at = 0n; ; ) {
      const page = await log.fetch(topic, 0, at);
      if (page.logStart > at) {
        at = page.logStart;
        continue;
      }
      for (const record of page.records) {
        const read = readLetterRecord(record);
        if ('redriven' in read) letters.delete(read.redriven);
        else if (read.letter) letters.set(read.letter.id, read.letter);
      }
      if (page.next <= at) break;
      at = page.next;
      if (!page.fromCache && at >= page.lastStable) break;
    }
    return letters;
  }
}
