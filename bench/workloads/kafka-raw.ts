// The raw baseline on Kafka: the plain @platformatic/kafka client doing the same work as
// eventfold the way a hand-written store would, with none of its checks.
//
// Topics (all under this run's prefix, 8 partitions, replication 1):
//   <prefix>.events      key = stream id, value = the JSON payload, one header (type); the
//                        partition is eventfold's (murmur2 of the key), so both layouts match
//   <prefix>.tx-events   the same records, written by the "raw as transaction" variant only
import { Admin, Consumer, FetchIsolationLevels, IS_CONTROL, Producer, ProduceAcks } from '@platformatic/kafka';
import { partitionOf } from '../../src/index.ts';
import { evolveBench, initialBenchState, type BenchEventData, type BenchTarget, type CatchUp, type LoadResult } from '../target.ts';
import { clientBase, deletePrefix, PARTITIONS, prefixFor } from './kafka-common.ts';

const TYPE = Buffer.from('Deposited');
const TYPE_HEADER = Buffer.from('type');
const MAX_BYTES = 4 * 1024 * 1024;

interface Opened {
  readonly prefix: string;
  readonly admin: Admin;
  readonly producer: Producer;
  /** Consumer used only for its Fetch API (no group is joined). */
  readonly reader: Consumer;
  /** Topic id and leader of each partition of the events topic. */
  readonly topicId: string;
  readonly leaders: number[];
  transactional?: Producer;
}

export function rawKafka(): BenchTarget {
  let opened: Opened | undefined;
  const o = (): Opened => {
    if (!opened) throw new Error('raw Kafka target is not open');
    return opened;
  };
  const eventsTopic = (prefix: string): string => `${prefix}.events`;
  const txTopic = (prefix: string): string => `${prefix}.tx-events`;
  const messagesOf = (topic: string, streamId: string, events: readonly BenchEventData[]) => {
    const partition = partitionOf(streamId, PARTITIONS);
    const key = Buffer.from(streamId);
    return events.map((data) => ({
      topic,
      partition,
      key,
      value: Buffer.from(JSON.stringify(data)),
      headers: new Map([[TYPE_HEADER, TYPE]]),
    }));
  };

  return {
    name: 'raw',
    snapshots: false,
    notes: [
      'raw: the plain @platformatic/kafka client (`Producer`, `Consumer`, `Admin`); records: key = stream id, value = the same JSON payload bytes eventfold stores, one header (type), to the partition eventfold would pick (murmur2 of the key)',
      'raw: an append is one `producer.send({ messages })` of an idempotent, non-transactional producer with acks=all (a 100-event append is one send: one Produce request, one record batch), awaited before the next. ' +
        'No expected-version check, no event id, metadata or time, no read-your-writes wait: the cheapest durable write of the payload, not an event store',
      'raw (rows marked "raw as transaction"): the same appends through one transactional producer (idempotent, acks=all), one transaction per append (begin, send, commit: AddPartitionsToTxn + Produce + EndTxn), the broker work eventfold\'s appends do; ' +
        "right after a commit the broker often answers the next transaction's first Produce with CONCURRENT_TRANSACTIONS (the previous commit's markers are still being written): raw retries with the delay eventfold's driver uses (5 ms doubling, jittered; the library default of 1 s made every raw transaction take a second), eventfold mostly avoids it because it waits for the markers; " +
        'to a separate topic, so loads and catch-up do not see them. Raw returns when EndTxn answers, before the commit markers are written; eventfold also waits until they are (read-your-writes)',
      "raw: a load reads the stream's partition from offset 0 up to its last stable offset with `consumer.fetch` (isolation read_committed, control batches skipped; the topic holds no transactions), keeps the records whose key is the stream id, JSON.parse + fold. " +
        'It reads the whole partition on every load (eventfold keeps an offset index); raw has no snapshots, so both load rows are the same full fold',
      'raw: catch-up is `consumer.consume({ topics: [events], mode: "earliest", autocommit: false })` with isolation read_committed and a new consumer group (joining it is timed; the broker runs group.initial.rebalance.delay.ms=0), JSON.parse of each value, no offset commits',
    ],
    appendVariants: [
      {
        label: 'raw as transaction (one per append)',
        async append(streamId, events, expectedVersion) {
          const target = o();
          target.transactional ??= new Producer({
            ...clientBase('eventfold-bench-raw-tx'),
            transactionalId: `${target.prefix}.raw-tx`,
            idempotent: true,
            acks: ProduceAcks.ALL,
            // The broker answers CONCURRENT_TRANSACTIONS to the next transaction's first Produce
            // while the previous commit's markers are still being written. The library's default
            // retry delay (1 s) would make every raw transaction cost a second; use the retry
            // delay eventfold's driver gives its writers (5 ms doubling, jittered, at most 500 ms).
            retries: 20,
            retryDelay: (_client, _op, attempt) => Math.min(500, 5 * 2 ** Math.max(0, attempt - 1)) * (0.5 + Math.random()),
          });
          const transaction = await target.transactional.beginTransaction();
          try {
            await transaction.send({ messages: messagesOf(txTopic(target.prefix), streamId, events) });
            await transaction.commit();
          } catch (error) {
            if (!transaction.completed) await transaction.abort().catch(() => undefined);
            throw error;
          }
          return expectedVersion + events.length;
        },
      },
    ],
    async open(dir) {
      const prefix = prefixFor(dir, 'raw');
      const admin = new Admin(clientBase('eventfold-bench-raw-admin'));
      try {
        const existing = new Set(await admin.listTopics());
        const missing = [eventsTopic(prefix), txTopic(prefix)].filter((t) => !existing.has(t));
        if (missing.length > 0) await admin.createTopics({ topics: missing, partitions: PARTITIONS, replicas: 1 });
        // Topic creation is asynchronous: wait for a leader on every partition.
        let topicId = '';
        let leaders: number[] = [];
        for (const deadline = Date.now() + 30_000; ; ) {
          const metadata = await admin
            .metadata({ topics: [eventsTopic(prefix), txTopic(prefix)], forceUpdate: true })
            .catch(() => undefined);
          const ready = [eventsTopic(prefix), txTopic(prefix)].every((name) => {
            const t = metadata?.topics.get(name);
            return t !== undefined && t.partitionsCount === PARTITIONS && t.partitions.every((p) => p && p.leader >= 0);
          });
          if (ready) {
            const t = metadata!.topics.get(eventsTopic(prefix))!;
            topicId = t.id;
            leaders = t.partitions.map((p) => p.leader);
            break;
          }
          if (Date.now() > deadline) throw new Error(`raw Kafka: topics of ${prefix} have no leaders after 30 s`);
          await new Promise((r) => setTimeout(r, 50));
        }
        opened = {
          prefix,
          admin,
          topicId,
          leaders,
          producer: new Producer({ ...clientBase('eventfold-bench-raw'), idempotent: true, acks: ProduceAcks.ALL }),
          reader: new Consumer({ ...clientBase('eventfold-bench-raw-reader'), groupId: `${prefix}.reader` }),
        };
      } catch (error) {
        await admin.close().catch(() => undefined);
        throw error;
      }
    },
    async append(streamId, events, expectedVersion) {
      const target = o();
      await target.producer.send({ messages: messagesOf(eventsTopic(target.prefix), streamId, events) });
      return expectedVersion + events.length; // trusted, not checked: raw has no version check
    },
    async load(streamId): Promise<LoadResult> {
      const target = o();
      const partition = partitionOf(streamId, PARTITIONS);
      const key = Buffer.from(streamId);
      let state = initialBenchState();
      let folded = 0;
      for (let at = 0n; ; ) {
        const response = await target.reader.fetch({
          node: target.leaders[partition]!,
          isolationLevel: FetchIsolationLevels.READ_COMMITTED,
          maxWaitTime: 0,
          minBytes: 1,
          maxBytes: MAX_BYTES,
          topics: [
            {
              topicId: target.topicId,
              partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: at, lastFetchedEpoch: -1, partitionMaxBytes: MAX_BYTES }],
            },
          ],
        });
        const p = response.responses[0]?.partitions.find((x) => x.partitionIndex === partition);
        if (!p) throw new Error(`raw Kafka: fetch of partition ${partition} returned nothing`);
        let next = at;
        for (const batch of p.records ?? []) {
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
          if (last >= next) next = last + 1n;
          if ((batch.attributes & IS_CONTROL) !== 0) continue;
          for (const record of batch.records) {
            const offset = batch.firstOffset + BigInt(record.offsetDelta);
            if (offset < at || offset >= p.lastStableOffset || !record.key?.equals(key)) continue;
            state = evolveBench(state, JSON.parse((record.value ?? Buffer.alloc(0)).toString('utf8')) as BenchEventData);
            folded++;
          }
        }
        if (next <= at || next >= p.lastStableOffset) break;
        at = next;
      }
      return { version: folded, state, eventsFolded: folded };
    },
    async catchUp(group, total): Promise<CatchUp> {
      const target = o();
      const consumer = new Consumer({
        ...clientBase('eventfold-bench-raw-catch-up'),
        groupId: `${target.prefix}.${group}`,
        isolationLevel: FetchIsolationLevels.READ_COMMITTED,
        maxWaitTime: 100,
        maxBytes: MAX_BYTES,
      });
      const stream = await consumer.consume({ topics: [eventsTopic(target.prefix)], mode: 'earliest', autocommit: false });
      let handled = 0;
      let sum = 0;
      try {
        for await (const message of stream) {
          sum += (JSON.parse(message.value.toString('utf8')) as BenchEventData).amount;
          if (++handled >= total) break;
        }
      } catch (error) {
        await stream.close().catch(() => undefined);
        await Promise.resolve(consumer.close(true)).catch(() => undefined);
        throw error;
      }
      if (handled !== total || sum <= 0) throw new Error(`raw catch-up read ${handled} events, expected ${total}`);
      return {
        handled,
        stop: async () => {
          await stream.close().catch(() => undefined);
          await Promise.resolve(consumer.close(true)).catch(() => undefined);
        },
      };
    },
    async close() {
      const target = opened;
      opened = undefined;
      if (!target) return;
      await target.transactional?.close().catch(() => undefined);
      await target.producer.close().catch(() => undefined);
      await Promise.resolve(target.reader.close(true)).catch(() => undefined);
      await target.admin.close().catch(() => undefined);
    },
    cleanup: async (dir) => void (await deletePrefix(dir)),
  };
}
