// Hostile bytes on the writer group's topics (`routing: true`): anything that can produce to the
// requests or replies topic can put bytes there that no writer sent. Every writer must skip
// them (and acknowledge them, or they would come back forever), store nothing of them, refuse a
// well-formed request that names a stream outside the partition it came to, and go on serving
// routed appends at once (not after the 30 s resend).
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { PulsarClient } from '../../../src/backends/pulsar/client/client.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import type { EncodedEvent } from '../../../src/core/driver.ts';
import { jsonCodec } from '../../../src/core/json-codec.ts';
import { encodeRequest } from '../../../src/core/log/routed-messages.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { createEventStore, type EventStore } from '../../../src/index.ts';
import { accountEvents, Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { admin, dropNamespace } from './support.ts';

const PARTITIONS = 2;
const namespace = uniqueName('hostile');
type Store = EventStore<ReturnType<typeof Deposited> | ReturnType<typeof Withdrawn>>;
const stores: Store[] = [];
after(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await dropNamespace('public', namespace);
});

function open(prefix: string, routing: boolean): { store: Store; driver: ReturnType<typeof pulsar> } {
  const driver = pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: PARTITIONS, routing });
  const store = createEventStore({ driver, events: accountEvents });
  stores.push(store);
  return { store, driver };
}

function streamIn(partition: number, base: string): string {
  for (let i = 0; ; i++) if (partitionOf(`${base}-${i}`, PARTITIONS) === partition) return `${base}-${i}`;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A well-formed event as a writer would route it. */
function encoded(amount: number): EncodedEvent {
  return {
    id: randomUUID(),
    type: 'Deposited',
    schemaVersion: 1,
    codec: jsonCodec().name,
    data: new TextEncoder().encode(JSON.stringify({ amount })),
    metadata: '{}',
    time: Date.now(),
  };
}

/** Bytes that are not a request a writer of this store sent. */
function hostileRequests(partition: number, replyTo: string): Uint8Array[] {
  const header = (value: unknown): Uint8Array => {
    const json = new TextEncoder().encode(JSON.stringify(value));
    const out = new Uint8Array(4 + json.byteLength);
    new DataView(out.buffer).setUint32(0, json.byteLength);
    out.set(json, 4);
    return out;
  };
  const other = 1 - partition;
  const elsewhere = streamIn(other, 'intruder');
  return [
    new Uint8Array(0),
    randomBytes(1024),
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7b),
    header({ v: 1, id: 'x', replyTo, many: false, requests: [{ streamId: 'intruder-proto', partition, __proto__: { polluted: true } }] }),
    header({ v: 99, id: 'x', replyTo, many: false, requests: [] }),
    header({
      v: 1,
      id: 'x',
      replyTo,
      many: false,
      requests: [{ streamId: 'intruder-size', partition, expectedVersion: 'any', events: [{ size: 1e9 }] }],
    }),
    // Well-formed, but the stream lives in the other partition: it says so (misrouted) ...
    encodeRequest({
      id: randomUUID(),
      replyTo,
      many: false,
      requests: [{ streamId: elsewhere, partition: other, expectedVersion: 'any', events: [encoded(666)] }],
    }),
    // ... or it claims to live here (misplaced).
    encodeRequest({
      id: randomUUID(),
      replyTo,
      many: false,
      requests: [{ streamId: elsewhere, partition, expectedVersion: 'any', events: [encoded(667)] }],
    }),
    // One append holding two requests.
    encodeRequest({
      id: randomUUID(),
      replyTo,
      many: false,
      requests: [
        { streamId: streamIn(partition, 'intruder-pair'), partition, expectedVersion: 'any', events: [encoded(668)] },
        { streamId: streamIn(partition, 'intruder-pair-b'), partition, expectedVersion: 'any', events: [encoded(669)] },
      ],
    }),
  ];
}

/** Messages of the writers' subscription not yet acknowledged, over every requests partition. */
async function requestBacklog(topic: string, subscription: string): Promise<number> {
  const res = await admin('GET', `persistent/${topic.slice('persistent://'.length)}/partitioned-stats`);
  assert.ok(res.ok, `partitioned-stats answered ${res.status}`);
  const stats = (await res.json()) as { subscriptions?: Record<string, { msgBacklog?: number }> };
  return stats.subscriptions?.[subscription]?.msgBacklog ?? 0;
}

describe('pulsar: hostile bytes on the writer group topics', () => {
  it('are skipped and acknowledged, nothing of them is stored, and routed appends go on at once', async () => {
    const prefix = uniqueName('store');
    const one = open(prefix, true);
    const two = open(prefix, true);
    const mine = [0, 1].map((p) => streamIn(p, 'acct'));
    // Both processes' stores join the writer group (the first append joins) and share the partitions out.
    await one.store.append(mine[0]!, Deposited({ amount: 1 }));
    await two.store.append(mine[1]!, Deposited({ amount: 1 }));

    const names = one.driver.names;
    const client = new PulsarClient({ serviceUrl: PULSAR_SERVICE_URL });
    try {
      const requestTopics = await client.partitionNames(names.requests);
      const replyTopics = await client.partitionNames(names.replies);
      assert.equal(requestTopics.length, PARTITIONS);
      for (const [partition, topic] of requestTopics.entries()) {
        const producer = await client.createProducer({ topic });
        // A reply address of the right shape, so only the request itself is wrong.
        for (const bytes of hostileRequests(partition, `0/w-${randomUUID()}`)) await producer.send(bytes, { key: 'intruder' });
        await producer.close();
      }
      for (const topic of replyTopics) {
        const producer = await client.createProducer({ topic });
        await producer.send(randomBytes(512), { key: 'intruder' });
        await producer.send(new Uint8Array(0));
        await producer.close();
      }
    } finally {
      await client.close();
    }

    // Appends from both stores to both partitions: whichever way the group split them, each
    // partition gets appends routed from the store that does not own it.
    const started = Date.now();
    for (let round = 0; round < 3; round++) {
      await Promise.all([one.store.append(mine[0]!, Withdrawn({ amount: 1 })), two.store.append(mine[0]!, Deposited({ amount: 2 }))]);
      await Promise.all([one.store.append(mine[1]!, Deposited({ amount: 3 })), two.store.append(mine[1]!, Withdrawn({ amount: 1 }))]);
    }
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 15_000, `12 appends after the hostile bytes took ${tookMs} ms (a stuck request waits for the 30 s resend)`);

    // Every hostile request was acknowledged: none is left to be delivered again.
    const deadline = Date.now() + 15_000;
    let backlog = await requestBacklog(names.requests, names.writers);
    while (backlog > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      backlog = await requestBacklog(names.requests, names.writers);
    }
    assert.equal(backlog, 0, 'requests left unacknowledged on the writers subscription');

    // A fresh reader (no routing) sees exactly the real appends.
    const reader = open(prefix, false).store;
    const all = await collect(reader.readAll());
    assert.equal(all.length, 14);
    assert.deepEqual([...new Set(all.map((e) => e.streamId))].sort(), [...mine].sort());
    assert.ok(
      all.every((e) => e.data.amount < 100),
      'no intruder event was stored',
    );
    for (const stream of mine) assert.equal((await collect(reader.readStream(stream))).length, 7);
  });
});
