// The loopback Redis Cluster (scripts/services `redis-cluster`): it really spreads keys over
// its masters, and an eventfold store on it writes, reads and shares a native consumer group
// across partitions that live on different masters.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCluster } from 'redis';
import { createEventStore, partitionOf, type EventOf, type EventStore } from '../../src/index.ts';
import { keySlot, redis, RedisKeys } from '../../src/backends/redis/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { REDIS_CLUSTER_URLS, uniqueName } from './env.ts';

const events = [Deposited, Withdrawn] as const;
type E = EventOf<typeof events>;
const PARTITIONS = 8;
const rootNodes = REDIS_CLUSTER_URLS.map((url) => ({ url }));

type Cluster = ReturnType<typeof createCluster>;
type Master = Cluster['masters'][number];
let cluster: Cluster;
const prefixes: string[] = [];

before(async () => {
  cluster = createCluster({ rootNodes, defaults: { socket: { connectTimeout: 5000 } } });
  cluster.on('error', () => undefined); // surfaced through the failing command instead
  await cluster.connect();
});

after(async () => {
  // Delete what the tests wrote, on every master (one key at a time: keys of different
  // slots cannot share a command on a cluster).
  for (const master of cluster.masters) {
    const node = await cluster.nodeClient(master);
    for (const prefix of prefixes) {
      for await (const keys of node.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 500 })) {
        await Promise.all(keys.map((key) => node.unlink(key)));
      }
    }
  }
  await cluster.close();
});

const label = (m: { host: string; port: number }) => `${m.host}:${m.port}`;

/** Slot ranges from CLUSTER SLOTS: which master owns a slot. */
async function slotOwners(): Promise<(slot: number) => string> {
  const node = await cluster.nodeClient(cluster.masters[0]!);
  const ranges = await node.clusterSlots();
  const covered = ranges.reduce((n, r) => n + (r.to - r.from + 1), 0);
  assert.equal(covered, 16384, 'CLUSTER SLOTS covers every slot');
  return (slot) => {
    const range = ranges.find((r) => r.from <= slot && slot <= r.to);
    assert.ok(range, `slot ${slot} has an owner`);
    return label(range.master);
  };
}

/** The keys under `prefix` on each master, found with SCAN on that master itself. */
async function keysByMaster(prefix: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const master of cluster.masters) {
    const node = await cluster.nodeClient(master);
    const keys: string[] = [];
    for await (const page of node.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 500 })) keys.push(...page);
    out.set(label(master), keys);
  }
  return out;
}

function masterByLabel(name: string): Master {
  const master = cluster.masters.find((m) => label(m) === name);
  assert.ok(master, `a master ${name}`);
  return master;
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function open(prefix: string): EventStore<E> {
  prefixes.push(prefix);
  return createEventStore({ driver: redis({ cluster: { rootNodes }, prefix, partitions: PARTITIONS }), events });
}

describe('redis cluster', () => {
  it('has several masters, all healthy, and the partition hash tags {p0}..{p7} map to slots of at least two of them, as keySlot computes', async () => {
    assert.ok(cluster.masters.length >= 2, `at least two masters (got ${cluster.masters.length})`);
    for (const master of cluster.masters) {
      const info = String(await (await cluster.nodeClient(master)).clusterInfo());
      assert.match(info, /^cluster_state:ok\r?$/m, `${label(master)} reports cluster_state:ok`);
      assert.match(info, /^cluster_slots_assigned:16384\r?$/m, `${label(master)} sees every slot assigned`);
    }
    const ownerOf = await slotOwners();
    const node = await cluster.nodeClient(cluster.masters[0]!);
    const owners = new Map<string, number[]>();
    const keys = new RedisKeys('ef');
    for (let p = 0; p < PARTITIONS; p++) {
      const slot = await node.clusterKeySlot(keys.hashTag(p));
      for (const key of [keys.all(p), keys.ids(p), keys.stream(p, 'account-1'), keys.redrive(p, 'g')]) {
        assert.equal(await node.clusterKeySlot(key), slot, `the hash tag alone decides the slot of ${key}`);
        assert.equal(keySlot(key), slot, `keySlot(${key}) is the server's CLUSTER KEYSLOT`);
      }
      const owner = ownerOf(slot);
      owners.set(owner, [...(owners.get(owner) ?? []), p]);
    }
    assert.ok(owners.size >= 2, `partitions spread over ≥ 2 masters: ${JSON.stringify([...owners])}`);
  });

  it('an eventfold store with 8 partitions writes each partition on the master owning its slot, on ≥ 2 masters, and reads everything back', async () => {
    const prefix = uniqueName('cluster-spread');
    const store = open(prefix);
    try {
      // Five streams in every partition, chosen by the core's own partition function.
      const perPartition = new Map<number, string[]>();
      for (let i = 0; [...perPartition.values()].reduce((n, s) => n + s.length, 0) < PARTITIONS * 5; i++) {
        const stream = `account-${i}`;
        const list = perPartition.get(partitionOf(stream, PARTITIONS)) ?? [];
        if (list.length < 5) perPartition.set(partitionOf(stream, PARTITIONS), [...list, stream]);
      }
      const streams = [...perPartition.values()].flat();
      await Promise.all(
        streams.map(async (stream, k) => {
          await store.append(stream, [Deposited({ amount: k + 1 }), Deposited({ amount: 1000 + k })], { expectedVersion: 'no_stream' });
          await store.append(stream, Withdrawn({ amount: 1 }), { expectedVersion: 2 });
        }),
      );

      for (const [k, stream] of streams.entries()) {
        const read = [];
        for await (const e of store.readStream(stream)) read.push([e.version, e.type, e.data.amount]);
        assert.deepEqual(
          read,
          [
            [1, 'Deposited', k + 1],
            [2, 'Deposited', 1000 + k],
            [3, 'Withdrawn', 1],
          ],
          stream,
        );
      }
      const seen = new Set<number>();
      let total = 0;
      for await (const e of store.readAll()) {
        seen.add(e.position.partition);
        total++;
      }
      assert.equal(total, streams.length * 3, 'readAll returns every event');
      assert.equal(seen.size, PARTITIONS, 'every partition holds events');

      // Where the keys are: each partition's keys on the master that owns its slot.
      const ownerOf = await slotOwners();
      const byMaster = await keysByMaster(prefix);
      const holding = [...byMaster].filter(([, keys]) => keys.length > 0).map(([m]) => m);
      assert.ok(holding.length >= 2, `keys on ≥ 2 masters (on ${holding.join(', ')})`);
      const anyNode = await cluster.nodeClient(cluster.masters[0]!);
      const keys = new RedisKeys(prefix);
      for (let p = 0; p < PARTITIONS; p++) {
        const slot = await anyNode.clusterKeySlot(keys.all(p));
        const owner = ownerOf(slot);
        const held = byMaster.get(owner) ?? [];
        assert.ok(held.includes(keys.all(p)), `partition ${p}'s log is on ${owner}`);
        // five streams, the log and the id index share the slot
        const inSlot = await (await cluster.nodeClient(masterByLabel(owner))).clusterCountKeysInSlot(slot);
        assert.ok(inSlot >= 7, `slot ${slot} of partition ${p} holds its keys on ${owner} (COUNTKEYSINSLOT ${inSlot})`);
        for (const [other, otherKeys] of byMaster) {
          if (other !== owner) assert.ok(!otherKeys.some((key) => key.includes(keys.hashTag(p))), `no key of partition ${p} on ${other}`);
        }
      }
    } finally {
      await store.close();
    }
  });

  it('native consumer groups: two competing consumers handle 40 events exactly once between them', async () => {
    const prefix = uniqueName('cluster-compete');
    const store = open(prefix);
    try {
      const ids: string[] = [];
      for (let i = 1; i <= 40; i++) {
        const e = Deposited({ amount: i });
        ids.push(e.id);
        await store.append(`account-${i % 11}`, e);
      }
      const seen = new Map<string, string[]>();
      const record = (consumer: string) => (e: { id: string }) => {
        seen.set(e.id, [...(seen.get(e.id) ?? []), consumer]);
      };
      const c1 = store.consume({ group: 'workers', consumer: 'c1', handler: record('c1'), batchSize: 5, blockMs: 100 });
      const c2 = store.consume({ group: 'workers', consumer: 'c2', handler: record('c2'), batchSize: 5, blockMs: 100 });
      await until(() => c1.handled + c2.handled >= 40, 'the group to handle 40 events');
      await new Promise((r) => setTimeout(r, 300)); // a late duplicate would show up here
      await Promise.all([c1.stop(), c2.stop()]);
      assert.equal(c1.handled + c2.handled, 40);
      assert.deepEqual([...seen.keys()].sort(), [...ids].sort(), 'every event handled');
      assert.ok(
        [...seen.values()].every((by) => by.length === 1),
        'no event handled twice',
      );
      let pending = 0;
      const keys = new RedisKeys(prefix);
      for (let p = 0; p < PARTITIONS; p++) {
        const key = keys.all(p);
        if ((await cluster.exists(key)) === 1) pending += Number((await cluster.xPending(key, 'workers')).pending);
      }
      assert.equal(pending, 0, 'every entry acknowledged');
    } finally {
      await store.close();
    }
  });
});
