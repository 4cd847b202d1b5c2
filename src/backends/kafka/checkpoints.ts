import { type Admin, type Connection, FindCoordinatorKeyTypes, offsetCommitV8 } from '@platformatic/kafka';
import type { Position } from '../../core/driver.ts';
import { DriverError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import { hasApiError, KAFKA as NAME } from './errors.ts';
import type { TopicLayout } from './layout.ts';
import type { PartitionLog } from './log.ts';
import { storedEvent } from './records.ts';
import type { KafkaNames } from './topics.ts';

/** Metadata of a committed offset: the last event handled (`ef-pos:<offset>`), or none (`ef-pos:-`). */
const POSITION = /^ef-pos:(-|\d+)$/;
/** Pages a save looks through for the next event of one partition before it settles for what it has seen. */
const MAX_PAGES = 16;
/** Bytes per probe: usually one record batch answers it. */
const PROBE_BYTES = 64 * 1024;
const RETRIABLE = ['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS', 'REQUEST_TIMED_OUT'];

/**
 * Subscription checkpoints as offsets of the Kafka consumer group `<prefix>.<group>` on every
 * events topic, so Kafka's own tools show a subscription's lag and can move it.
 *
 * The core's position in a partition is the offset of the last event it handled; Kafka's
 * committed offset is the next offset to read. Committing "last event + 1" would leave a
 * caught-up group behind the partition's end for ever: every transaction ends in a marker, and
 * the writers' ownership proofs (lease.ts) and failed appends leave aborted records, none of
 * which a reader ever sees. So a save commits the first offset past the position that may still
 * hold an event: it reads on from the position (read_committed, our own filter) past markers,
 * aborted records and records eventfold did not write (which reads skip too), and stops at the
 * first event or at the last stable offset. Only offsets below the last stable offset that hold
 * no visible event are passed, and those never become events; a transaction still open stops
 * the commit at its first offset. A caught-up group thus commits the partition's end: lag 0.
 * Cost: per save, one small Fetch for each partition the page cache cannot answer.
 *
 * The position itself stays exact: the commit's metadata says which event it follows
 * (`ef-pos:<offset>`, or `ef-pos:-` when the group has handled none in that partition), so
 * `groups.position()` returns event offsets, as on every backend. An offset committed by another
 * tool (kafka-consumer-groups --reset-offsets clears the metadata) reads as "handled up to the
 * committed offset - 1", which is what Kafka means by it.
 */
export class KafkaCheckpoints {
  readonly #names: KafkaNames;
  readonly #layout: TopicLayout;
  readonly #admin: () => Admin;
  readonly #log: () => PartitionLog;
  readonly #coordinators = new Map<string, number>();

  constructor(options: { names: KafkaNames; layout: TopicLayout; admin: () => Admin; log: () => PartitionLog }) {
    this.#names = options.names;
    this.#layout = options.layout;
    this.#admin = options.admin;
    this.#log = options.log;
  }

  async read(group: string): Promise<readonly Position[] | undefined> {
    const [listed] = await this.#admin().listConsumerGroupOffsets({
      groups: [
        {
          groupId: this.#names.group(group),
          topics: this.#layout.byTopic().map((t) => ({ name: t.topic, partitionIndexes: t.partitions.map((p) => p.partition) })),
        },
      ],
    });
    const positions: Position[] = [];
    for (const topic of listed?.topics ?? []) {
      for (const p of topic.partitions) {
        const partition = this.#layout.partitionFor(topic.name, p.partitionIndex);
        if (partition === undefined || p.committedOffset <= 0n) continue;
        const mark = POSITION.exec(p.metadata ?? '');
        if (mark?.[1] === '-') continue;
        const last = mark ? BigInt(mark[1]!) : undefined;
        positions.push({ partition, offset: last !== undefined && last < p.committedOffset ? last : p.committedOffset - 1n });
      }
    }
    positions.sort((a, b) => a.partition - b.partition);
    return positions.length === 0 ? undefined : positions;
  }

  /** One OffsetCommit carrying every partition replaces the whole vector at once: partitions it does not name go back to "nothing handled". */
  async write(group: string, positions: readonly Position[]): Promise<void> {
    const byPartition = new Map(positions.map((p) => [p.partition, p.offset]));
    const topics = await Promise.all(
      this.#layout.byTopic().map(async (t) => ({
        name: t.topic,
        partitions: await Promise.all(
          t.partitions.map(async ({ partition, store }) => {
            const last = byPartition.get(store);
            return {
              partitionIndex: partition,
              committedOffset: await this.#nextEvent(t.topic, partition, store, last === undefined ? 0n : last + 1n),
              committedLeaderEpoch: -1,
              committedMetadata: `ef-pos:${last ?? '-'}`,
            };
          }),
        ),
      })),
    );
    const groupId = this.#names.group(group);
    for (let attempt = 0; ; attempt++) {
      try {
        // Generation -1 and no member id: the commit of a group without members (an admin commit).
        await offsetCommitV8.api.async(await this.#coordinator(groupId), groupId, -1, '', null, topics);
        return;
      } catch (error) {
        this.#coordinators.delete(groupId);
        if (!hasApiError(error, ...RETRIABLE) || attempt >= 5) throw error;
        await sleep(20 * 2 ** attempt);
      }
    }
  }

  async delete(group: string): Promise<void> {
    await this.#admin()
      .deleteGroups({ groups: [this.#names.group(group)] })
      .catch((error: unknown) => {
        if (!hasApiError(error, 'GROUP_ID_NOT_FOUND')) throw error;
      });
  }

  /**
   * The first offset at or after `from` that may hold an event no one has handled: `from`
   * itself when it holds an event (or a transaction still open there), else past every marker,
   * aborted record and foreign record after it, up to the next event or the last stable offset.
   */
  async #nextEvent(topic: string, partition: number, store: number, from: bigint): Promise<bigint> {
    const log = this.#log();
    let at = from;
    for (let pages = 0; pages < MAX_PAGES; pages++) {
      let page: Awaited<ReturnType<typeof log.fetch>>;
      try {
        page = await log.fetch(topic, partition, at, 0, PROBE_BYTES);
      } catch (error) {
        // A position past the end of the log (a seek ahead): nothing to pass.
        if (hasApiError(error, 'OFFSET_OUT_OF_RANGE')) return at;
        throw error;
      }
      if (page.logStart > at) {
        at = page.logStart; // deleted records: no reader can get them
        continue;
      }
      for (const record of page.records) if (storedEvent(record, store)) return record.offset;
      // Never past the last stable offset: an open transaction may still commit an event there.
      const end = page.fromCache || page.next < page.lastStable ? page.next : page.lastStable;
      if (end <= at) return at;
      at = end;
      if (!page.fromCache && at >= page.lastStable) return at;
    }
    return at;
  }

  async #coordinator(groupId: string): Promise<Connection> {
    const admin = this.#admin();
    let node = this.#coordinators.get(groupId);
    if (node === undefined) {
      const [found] = await admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [groupId] });
      if (!found) throw new DriverError(NAME, `no coordinator for group ${groupId}`);
      node = found.nodeId;
      this.#coordinators.set(groupId, node);
    }
    const broker = (await admin.metadata({ topics: [] })).brokers.get(node);
    if (!broker) {
      this.#coordinators.delete(groupId);
      throw new DriverError(NAME, `no broker ${node} (the coordinator of group ${groupId}) in the cluster metadata`);
    }
    return admin.connections.get(broker);
  }
}
