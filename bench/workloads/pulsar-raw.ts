// The raw baseline on Pulsar: eventfold's own binary-protocol client (src/backends/pulsar/client)
// used directly, doing the same work as eventfold the way a hand-written store would, with none
// of its checks: no version check, no index, no event ids, no partition ownership.
//
// Topics (in this round's namespace, which has eventfold's policies: infinite retention,
// deduplication on; 8 partitions each):
//   raw-events   one message per event: key = stream id, payload = the JSON payload, one
//                property (type); the partition is eventfold's (murmur2 of the stream id)
//   raw-packed   the "one message per append" variant only: an append's events as one JSON array
import { randomUUID } from 'node:crypto';
import { PulsarClient } from '../../src/backends/pulsar/client/client.ts';
import type { Consumer } from '../../src/backends/pulsar/client/consumer.ts';
import { compareMessageIds, EARLIEST, type MessageId } from '../../src/backends/pulsar/client/message-id.ts';
import type { Producer } from '../../src/backends/pulsar/client/producer.ts';
import { partitionOf } from '../../src/index.ts';
import { evolveBench, initialBenchState, type BenchEventData, type BenchTarget, type CatchUp, type LoadResult } from '../target.ts';
import {
  createBenchNamespace,
  createPartitionedTopic,
  dropNamespaceOf,
  namespaceFor,
  PULSAR_PARTITIONS,
  pulsarUrls,
} from './pulsar-common.ts';

const PROPERTIES = { type: 'Deposited' } as const;
/** A message the broker said exists that takes longer than this to arrive fails the read. */
const RECEIVE_TIMEOUT_MS = 30_000;

interface Opened {
  readonly client: PulsarClient;
  /** Producers of raw-events and raw-packed, by partition. */
  readonly events: Producer[];
  readonly packed: Producer[];
  readonly eventsTopic: string;
}

/** GetLastMessageId of an empty topic answers -1:-1 (as uint64). */
const isNone = (id: MessageId): boolean => id.entryId > 1n << 62n || id.ledgerId > 1n << 62n;
/** Unbatched messages: an entry is one message, compared by (ledger, entry). */
const reached = (id: MessageId, last: MessageId): boolean => compareMessageIds({ ...id, batchIndex: -1 }, { ...last, batchIndex: -1 }) >= 0;

const text = (payload: Uint8Array): string => Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');

/**
 * Every message of `topic` up to its last message id as of the start, through a non-durable
 * reader from the earliest message; `onMessage` sees each. The reader is closed after.
 */
async function readToEnd(
  client: PulsarClient,
  topic: string,
  onMessage: (key: string | undefined, payload: Uint8Array) => void,
): Promise<number> {
  const reader: Consumer = await client.subscribe({
    topic,
    subscription: `raw-reader-${randomUUID()}`,
    durable: false,
    startMessageId: EARLIEST,
    receiverQueueSize: 1000,
  });
  try {
    const last = await reader.getLastMessageId();
    if (isNone(last)) return 0;
    let read = 0;
    for (;;) {
      const message = await reader.receive(RECEIVE_TIMEOUT_MS);
      onMessage(message.key, message.payload);
      read++;
      if (reached(message.messageId, last)) return read;
    }
  } finally {
    await reader.close().catch(() => undefined);
  }
}

export function rawPulsar(): BenchTarget {
  let opened: Opened | undefined;
  const o = (): Opened => {
    if (!opened) throw new Error('raw Pulsar target is not open');
    return opened;
  };
  const encode = (data: BenchEventData): Buffer => Buffer.from(JSON.stringify(data));

  return {
    name: 'raw',
    snapshots: false,
    notes: [
      "raw: eventfold's own Pulsar client (src/backends/pulsar/client: `PulsarClient`, `Producer`, `Consumer`) used directly, no eventfold store; " +
        'messages: key = stream id, payload = the same JSON payload bytes eventfold stores, one property (type), to the partition eventfold would pick (murmur2 of the stream id), through one Shared producer per partition opened with the store (untimed)',
      'raw: an append sends one message per event (the client does not batch) and awaits the receipts: a 100-event append is 100 sends written at once, awaited together (100 entries, pipelined on one connection); ' +
        "the namespace has deduplication on, as eventfold's does; no version check, no index, no event ids: a durable write of the payloads, not an event store",
      'raw (rows marked "raw, one message per append"): an append is one message holding its events as one JSON array, the layout eventfold uses (one message per commit), to a separate topic, so loads and catch-up do not see them',
      "raw: a load opens a non-durable reader on the stream's partition from the earliest message, asks its last message id, receives up to it, keeps the messages whose key is the stream id, JSON.parse + fold, and closes the reader. " +
        'It reads the whole partition on every load (eventfold keeps an index and a cache); raw has no snapshots, so both load rows are the same full fold',
      'raw: catch-up opens a non-durable reader per partition from the earliest message (opening them is timed) and receives every partition up to its last message id, in parallel, JSON.parse of each payload; no checkpoint',
    ],
    appendVariants: [
      {
        label: 'raw, one message per append',
        async append(streamId, events, expectedVersion) {
          const producer = o().packed[partitionOf(streamId, PULSAR_PARTITIONS)]!;
          await producer.send(Buffer.from(JSON.stringify(events)), { key: streamId, properties: PROPERTIES });
          return expectedVersion + events.length;
        },
      },
    ],
    async open(dir) {
      const namespace = namespaceFor(dir, 'raw');
      await createBenchNamespace(namespace);
      const eventsTopic = `persistent://public/${namespace}/raw-events`;
      const packedTopic = `persistent://public/${namespace}/raw-packed`;
      await createPartitionedTopic(eventsTopic, PULSAR_PARTITIONS);
      await createPartitionedTopic(packedTopic, PULSAR_PARTITIONS);
      const client = new PulsarClient({ serviceUrl: pulsarUrls().serviceUrl });
      try {
        const producers = (topic: string) =>
          Promise.all(Array.from({ length: PULSAR_PARTITIONS }, (_, p) => client.createProducer({ topic: `${topic}-partition-${p}` })));
        opened = { client, eventsTopic, events: await producers(eventsTopic), packed: await producers(packedTopic) };
      } catch (error) {
        await client.close().catch(() => undefined);
        throw error;
      }
    },
    async append(streamId, events, expectedVersion) {
      const producer = o().events[partitionOf(streamId, PULSAR_PARTITIONS)]!;
      if (events.length === 1) await producer.send(encode(events[0]!), { key: streamId, properties: PROPERTIES });
      else await Promise.all(events.map((data) => producer.send(encode(data), { key: streamId, properties: PROPERTIES })));
      return expectedVersion + events.length; // trusted, not checked: raw has no version check
    },
    async load(streamId): Promise<LoadResult> {
      const target = o();
      const partition = partitionOf(streamId, PULSAR_PARTITIONS);
      let state = initialBenchState();
      let folded = 0;
      await readToEnd(target.client, `${target.eventsTopic}-partition-${partition}`, (key, payload) => {
        if (key !== streamId) return;
        state = evolveBench(state, JSON.parse(text(payload)) as BenchEventData);
        folded++;
      });
      return { version: folded, state, eventsFolded: folded };
    },
    async catchUp(_group, total): Promise<CatchUp> {
      const target = o();
      let sum = 0;
      const counts = await Promise.all(
        Array.from({ length: PULSAR_PARTITIONS }, (_, p) =>
          readToEnd(target.client, `${target.eventsTopic}-partition-${p}`, (_key, payload) => {
            sum += (JSON.parse(text(payload)) as BenchEventData).amount;
          }),
        ),
      );
      const handled = counts.reduce((a, b) => a + b, 0);
      if (handled !== total || sum <= 0) throw new Error(`raw catch-up read ${handled} events, expected ${total}`);
      return { handled, stop: async () => undefined };
    },
    async close() {
      const target = opened;
      opened = undefined;
      await target?.client.close();
    },
    cleanup: (dir) => dropNamespaceOf(dir),
  };
}
