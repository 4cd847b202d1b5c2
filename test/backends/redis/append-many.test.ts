// Atomic appends across streams on Redis (appendMany: one Lua script over every key involved),
// on the single node (any streams) and on the 3-master cluster (streams of one hash slot).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { createClient, createCluster } from 'redis';
import {
  createEventStore,
  DuplicateEventIdError,
  ExpectedVersionConflictError,
  InvalidArgumentError,
  partitionOf,
  type EventOf,
  type EventStore,
  type RecordedEvent,
} from '../../../src/index.ts';
import { keySlot, redis, RedisDriver, RedisKeys } from '../../../src/backends/redis/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { REDIS_CLUSTER_URLS, REDIS_URL, uniqueName } from '../../services/env.ts';
import { runtimeOf } from '../../support/runtime.ts';

const events = [Deposited, Withdrawn] as const;
type Store = EventStore<EventOf<typeof events>>;
const rootNodes = REDIS_CLUSTER_URLS.map((url) => ({ url }));
const opened: Store[] = [];
const prefixes = { node: [] as string[], cluster: [] as string[] };

function openNode(prefix: string, partitions = 4): Store {
  prefixes.node.push(prefix);
  const store = createEventStore({ driver: redis({ url: REDIS_URL, prefix, partitions }), events });
  opened.push(store);
  return store;
}

function openCluster(prefix: string, partitions = 8): Store {
  prefixes.cluster.push(prefix);
  const store = createEventStore({ driver: redis({ cluster: { rootNodes }, prefix, partitions }), events });
  opened.push(store);
  return store;
}

/** Every key of `prefix`: on the single node, or on every master of the cluster. */
async function keysOf(where: 'node' | 'cluster', prefix: string): Promise<string[]> {
  const match = new RedisKeys(prefix).scanPattern();
  const out: string[] = [];
  if (where === 'node') {
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for await (const page of client.scanIterator({ MATCH: match, COUNT: 1000 })) out.push(...page);
    await client.close();
  } else {
    const cluster = createCluster({ rootNodes });
    cluster.on('error', () => undefined);
    await cluster.connect();
    for (const master of cluster.masters) {
      const node = await cluster.nodeClient(master);
      for await (const page of node.scanIterator({ MATCH: match, COUNT: 1000 })) out.push(...page);
    }
    await cluster.close();
  }
  return out.sort();
}

after(async () => {
  await Promise.allSettled(opened.map((s) => s.close()));
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  for (const prefix of prefixes.node) for (const key of await keysOf('node', prefix)) await client.unlink(key);
  await client.close();
  const cluster = createCluster({ rootNodes });
  cluster.on('error', () => undefined);
  await cluster.connect();
  for (const prefix of prefixes.cluster) for (const key of await keysOf('cluster', prefix)) await cluster.unlink(key);
  await cluster.close();
});

/** A stream id that lands in `partition` of a store with `partitions`. */
function streamIn(partitions: number, partition: number, base: string, skip: readonly string[] = []): string {
  for (let i = 0; ; i++) {
    const id = `${base}-${i}`;
    if (partitionOf(id, partitions) === partition && !skip.includes(id)) return id;
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const where = (list: readonly RecordedEvent<EventOf<typeof events>>[]) => list.map((e) => [e.streamId, e.version, e.position.partition]);

describe('redis appendMany: single node', () => {
  it('appends to streams of three partitions in one script: every stream and every partition log gets its events', async () => {
    const store = openNode(uniqueName('many-node'));
    const [a, b, c] = [0, 1, 3].map((p) => streamIn(4, p, 'account'));
    await store.append(b!, Deposited({ amount: 1 }));
    const ok = await store.appendMany([
      { streamId: a!, events: [Deposited({ amount: 10 }), Deposited({ amount: 11 })], expectedVersion: 'no_stream' },
      { streamId: b!, events: Withdrawn({ amount: 1 }), expectedVersion: 1 },
      { streamId: c!, events: Deposited({ amount: 30 }), expectedVersion: 'any' },
    ]);
    assert.deepEqual(
      ok.map((o) => o.nextExpectedVersion),
      [2, 2, 1],
    );
    assert.deepEqual(
      ok.map((o) => o.alreadyStored),
      [false, false, false],
    );
    assert.deepEqual(
      ok.map((o) => o.events.map((e) => e.position.partition)),
      [[0, 0], [1], [3]],
    );
    assert.deepEqual(
      (await collect(store.readStream(a!))).map((e) => e.data.amount),
      [10, 11],
    );
    assert.deepEqual(
      (await collect(store.readStream(b!))).map((e) => e.type),
      ['Deposited', 'Withdrawn'],
    );
    const all = await collect(store.readAll());
    assert.deepEqual(
      where(all),
      [
        [a, 1, 0],
        [a, 2, 0],
        [b, 1, 1],
        [b, 2, 1],
        [c, 1, 3],
      ],
      'each partition log holds its events once',
    );
    assert.deepEqual(
      all.filter((e) => e.streamId !== b || e.version === 2).map((e) => e.position),
      ok.flatMap((o) => o.events.map((e) => e.position)),
    );
    const since = await collect(store.readSince(new Date(Math.min(...all.map((e) => e.time.getTime())))));
    assert.equal(since.length, 5, 'the logs stay a time index');
  });

  it('stores nothing of a batch with one stale expected version, a known event id or an id twice', async () => {
    const prefix = uniqueName('many-none');
    const store = openNode(prefix);
    const keys = new RedisKeys(prefix);
    const [a, b, c] = [0, 2, 3].map((p) => streamIn(4, p, 'account'));
    const first = Deposited({ amount: 1 });
    await store.appendMany([
      { streamId: a!, events: first },
      { streamId: c!, events: Deposited({ amount: 2 }) },
    ]);
    const before = await keysOf('node', prefix);
    const logBefore = await collect(store.readAll());
    const fresh = [Deposited({ amount: 50 }), Deposited({ amount: 51 })];
    // The last stream's expectation is stale: the others, checked fine, get nothing either.
    await assert.rejects(
      store.appendMany([
        { streamId: a!, events: fresh[0]!, expectedVersion: 1 },
        { streamId: b!, events: fresh[1]!, expectedVersion: 'no_stream' },
        { streamId: c!, events: Deposited({ amount: 52 }), expectedVersion: 0 },
      ]),
      (error: unknown) =>
        error instanceof ExpectedVersionConflictError && error.streamId === c && error.actualVersion === 1 && error.expectedVersion === 0,
    );
    // An id already stored in the partition of its stream (not a retry: another stream).
    const a2 = streamIn(4, 0, 'account', [a!]);
    await assert.rejects(
      store.appendMany([
        { streamId: b!, events: fresh[1]! },
        { streamId: a2, events: first },
      ]),
      (error: unknown) =>
        error instanceof DuplicateEventIdError &&
        error.eventId === first.id &&
        error.existing.streamId === a &&
        error.existing.version === 1,
    );
    // One id in two streams of one batch: refused before anything is sent.
    await assert.rejects(
      store.appendMany([
        { streamId: b!, events: fresh[0]! },
        { streamId: c!, events: fresh[0]! },
      ]),
      (error: unknown) => error instanceof InvalidArgumentError && /appears twice in one appendMany/.test(error.message),
    );
    assert.deepEqual(await keysOf('node', prefix), before, 'no key was created');
    assert.deepEqual(await collect(store.readAll()), logBefore, 'no partition log changed');
    assert.deepEqual([await store.streamVersion(a!), await store.streamVersion(b!), await store.streamVersion(c!)], [1, 0, 1]);
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for (const e of fresh) assert.equal(await client.hExists(keys.ids(store.partitionOf(a!)), e.id), 0, 'no id was indexed');
    assert.equal(await client.hExists(keys.ids(store.partitionOf(b!)), fresh[1]!.id), 0);
    await client.close();
  });

  it("recognises an exact retry of a stored batch (alreadyStored, the first try's events) and nothing else", async () => {
    const store = openNode(uniqueName('many-retry'));
    const [a, b] = [1, 2].map((p) => streamIn(4, p, 'account'));
    await store.append(b!, Deposited({ amount: 1 }));
    const withdrawal = Withdrawn({ amount: 1 });
    const checked = [
      { streamId: a!, events: [Deposited({ amount: 5 }), Withdrawn({ amount: 1 })], expectedVersion: 'no_stream' as const },
      { streamId: b!, events: withdrawal, expectedVersion: 1 },
    ];
    const unchecked = [
      { streamId: a!, events: Deposited({ amount: 6 }) },
      { streamId: b!, events: [Deposited({ amount: 7 }), Deposited({ amount: 8 })] },
    ];
    for (const batch of [checked, unchecked]) {
      const first = await store.appendMany(batch);
      const again = await store.appendMany(batch); // a conflict (checked) or a duplicate (unchecked) on the server
      assert.deepEqual(
        again.map((o) => o.alreadyStored),
        [true, true],
      );
      assert.deepEqual(
        again.map((o) => o.nextExpectedVersion),
        first.map((o) => o.nextExpectedVersion),
      );
      assert.deepEqual(
        again.map((o) => o.events.map((e) => [e.id, e.version, e.position, e.time])),
        first.map((o) => o.events.map((e) => [e.id, e.version, e.position, e.time])),
      );
    }
    // Still a retry after the streams moved on (the ids sit where the batch put them).
    await store.append(a!, Deposited({ amount: 9 }));
    assert.deepEqual(
      (await store.appendMany(checked)).map((o) => o.alreadyStored),
      [true, true],
    );
    // Not retries: the same batch with one event more, or with one stream fewer and a new one.
    await assert.rejects(
      store.appendMany([checked[0]!, { ...checked[1]!, events: [withdrawal, Deposited({ amount: 1 })] }]),
      ExpectedVersionConflictError,
    );
    await assert.rejects(
      store.appendMany([unchecked[0]!, { streamId: 'account-new', events: Deposited({ amount: 1 }) }]),
      DuplicateEventIdError,
    );
    assert.deepEqual(
      (await collect(store.readAll())).map((e) => e.data.amount).sort((x, y) => x - y),
      [1, 1, 1, 5, 6, 7, 8, 9],
      'nothing stored twice',
    );
  });

  it('OS processes racing appendMany with expected versions on overlapping streams: one winner per conflict, nothing partial', async (t) => {
    const streams = [0, 1, 3].map((p) => streamIn(4, p, 'race'));
    await raceAppendMany(t, 'node', REDIS_URL, openNode(uniqueName('many-race')), streams);
  });
});

describe('redis appendMany: cluster', () => {
  it('refuses streams of different slots with an InvalidArgumentError naming them, their partitions and slots, and stores nothing', async () => {
    const prefix = uniqueName('many-xslot');
    const store = openCluster(prefix);
    const keys = new RedisKeys(prefix);
    const [a, b] = [2, 5].map((p) => streamIn(8, p, 'account'));
    const [slotA, slotB] = [2, 5].map((p) => keySlot(keys.all(p)));
    assert.notEqual(slotA, slotB);
    await assert.rejects(
      store.appendMany([
        { streamId: a!, events: Deposited({ amount: 1 }), expectedVersion: 'no_stream' },
        { streamId: b!, events: Deposited({ amount: 2 }), expectedVersion: 'no_stream' },
      ]),
      (error: unknown) => {
        // Our error, not the server's CROSSSLOT (which would surface as a DriverError): nothing was sent.
        assert.ok(error instanceof InvalidArgumentError, `got ${String(error)}`);
        assert.equal(error.code, 'INVALID_ARGUMENT');
        assert.ok(error.message.includes(`"${a}" (partition 2, slot ${slotA})`), error.message);
        assert.ok(error.message.includes(`"${b}" (partition 5, slot ${slotB})`), error.message);
        assert.match(error.message, /one hash slot/);
        return true;
      },
    );
    assert.deepEqual([await store.streamVersion(a!), await store.streamVersion(b!)], [0, 0]);
    assert.deepEqual(await keysOf('cluster', prefix), [], 'no key anywhere in the cluster');
  });

  it('appends atomically to streams of one partition: checked, all or none, an exact retry recognised', async () => {
    const store = openCluster(uniqueName('many-slot'));
    const a = streamIn(8, 6, 'account');
    const b = streamIn(8, 6, 'account', [a]);
    const c = streamIn(8, 6, 'account', [a, b]);
    await store.append(b, Deposited({ amount: 1 }));
    await assert.rejects(
      store.appendMany([
        { streamId: a, events: Deposited({ amount: 9 }), expectedVersion: 'no_stream' },
        { streamId: b, events: Deposited({ amount: 9 }), expectedVersion: 0 },
      ]),
      (error: unknown) => error instanceof ExpectedVersionConflictError && error.streamId === b && error.actualVersion === 1,
    );
    assert.equal(await store.streamVersion(a), 0, 'nothing of the failed batch');
    const batch = [
      { streamId: a, events: [Deposited({ amount: 10 }), Deposited({ amount: 11 })], expectedVersion: 'no_stream' as const },
      { streamId: b, events: Withdrawn({ amount: 1 }), expectedVersion: 1 },
      { streamId: c, events: Deposited({ amount: 30 }) },
    ];
    const ok = await store.appendMany(batch);
    assert.deepEqual(
      ok.map((o) => o.nextExpectedVersion),
      [2, 2, 1],
    );
    const log = await collect(store.readAll());
    assert.deepEqual(
      where(log),
      [
        [b, 1, 6],
        [a, 1, 6],
        [a, 2, 6],
        [b, 2, 6],
        [c, 1, 6],
      ],
      'the partition log holds the batch once, in order',
    );
    const again = await store.appendMany(batch);
    assert.deepEqual(
      again.map((o) => o.alreadyStored),
      [true, true, true],
    );
    assert.deepEqual(
      again.map((o) => o.events.map((e) => e.position)),
      ok.map((o) => o.events.map((e) => e.position)),
    );
    assert.equal((await collect(store.readAll())).length, 5, 'the retry stored nothing');
  });

  it('takes streams of two partitions whose hash tags share a slot: the rule is the slot, not the partition', async () => {
    const partitions = 3100;
    const prefix = uniqueName('many-sameslot');
    const keys = new RedisKeys(prefix);
    const slots = new Map<number, number>();
    let pair: [number, number] | undefined;
    for (let p = 0; p < partitions && !pair; p++) {
      const slot = keySlot(keys.all(p));
      const other = slots.get(slot);
      if (other === undefined) slots.set(slot, p);
      else pair = [other, p];
    }
    assert.ok(pair, 'two partitions of 3100 share a slot');
    const store = openCluster(prefix, partitions);
    const [a, b] = pair.map((p) => streamIn(partitions, p, 'account'));
    const ok = await store.appendMany([
      { streamId: a!, events: Deposited({ amount: 1 }), expectedVersion: 'no_stream' },
      { streamId: b!, events: Deposited({ amount: 2 }), expectedVersion: 'no_stream' },
    ]);
    assert.deepEqual(
      ok.map((o) => o.events[0]!.position.partition),
      pair,
    );
    assert.deepEqual([await store.streamVersion(a!), await store.streamVersion(b!)], [1, 1]);
  });

  it('OS processes racing appendMany on overlapping streams of one partition: one winner per conflict, nothing partial', async (t) => {
    const streams: string[] = [];
    for (let i = 0; i < 3; i++) streams.push(streamIn(8, 3, 'race', streams));
    await raceAppendMany(t, 'cluster', `cluster:${REDIS_CLUSTER_URLS.join(',')}`, openCluster(uniqueName('many-crace')), streams);
  });
});

const workerFile = new URL('./append-many-worker.ts', import.meta.url).pathname;

interface WorkerReport {
  worker: string;
  attempts: number;
  won: { batch: string; streams: { streamId: string; from: number; to: number }[] }[];
  lost: { batch: string; eventIds: string[] }[];
  conflicts: number;
}

/** Starts a worker; resolves `ready` once it is connected, `report` when it exits 0. */
function startWorker(args: string[]): { ready: Promise<void>; go(): void; report: Promise<WorkerReport> } {
  const child = spawn(process.execPath, [workerFile, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  let out = '';
  let signalReady: () => void;
  const ready = new Promise<void>((resolve) => (signalReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.startsWith('ready\n')) signalReady();
  });
  const report = new Promise<WorkerReport>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`worker ${args[3]} exited ${code ?? signal}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as WorkerReport);
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), report };
}

/**
 * Three processes connect, then start at one signal and for a second each append batches over
 * pairs of `streams` (every pair overlaps another), expecting the versions they just read. Then
 * every stream must be a chain of whole winning batches, each starting at the version its writer
 * expected; no event of a losing batch is stored anywhere, and the partition logs hold exactly
 * the streams' events.
 */
async function raceAppendMany(
  t: { diagnostic(message: string): void },
  kind: 'node' | 'cluster',
  target: string,
  store: Store,
  streams: string[],
): Promise<void> {
  const driver = runtimeOf(store).driver;
  assert.ok(driver instanceof RedisDriver);
  const workers = ['a', 'b', 'c'].map((w) =>
    startWorker([target, driver.keys.prefix, String(driver.partitions), w, '1000', streams.join(',')]),
  );
  await Promise.all(workers.map((w) => w.ready));
  for (const w of workers) w.go();
  const reports = await Promise.all(workers.map((w) => w.report));
  const wins = reports.flatMap((r) => r.won);
  const conflicts = reports.reduce((n, r) => n + r.conflicts, 0);
  t.diagnostic(
    `${kind}: ${wins.length} batches won, ${conflicts} lost to a conflict (${reports.map((r) => `${r.worker} ${r.won.length}/${r.conflicts}`).join(', ')})`,
  );
  assert.equal(
    wins.length + conflicts,
    reports.reduce((n, r) => n + r.attempts, 0),
    'every attempt either won or lost to a conflict',
  );
  assert.ok(conflicts > 0, 'the processes really raced');

  const byBatch = new Map<string, { streamId: string; version: number }[]>();
  const storedIds = new Set<string>();
  for (const streamId of streams) {
    const read = await collect(store.readStream(streamId));
    assert.deepEqual(
      read.map((e) => e.version),
      read.map((_, i) => i + 1),
      `${streamId} has no gaps`,
    );
    // Winners on this stream, in version order: each started where the previous one ended.
    const chain = wins
      .flatMap((w) => w.streams.filter((s) => s.streamId === streamId).map((s) => ({ ...s, batch: w.batch })))
      .sort((x, y) => x.from - y.from);
    let version = 0;
    for (const link of chain) {
      assert.equal(
        link.from,
        version,
        `${link.batch} expected ${link.from} on ${streamId} and won: it is the only winner from ${link.from}`,
      );
      version = link.to;
    }
    assert.equal(read.length, version, `${streamId} holds exactly its winners' events`);
    for (const e of read) {
      storedIds.add(e.id);
      const batch = e.metadata['batch']!;
      byBatch.set(batch, [...(byBatch.get(batch) ?? []), { streamId, version: e.version }]);
    }
  }
  for (const w of wins) {
    const expected = w.streams.flatMap((s) =>
      Array.from({ length: s.to - s.from }, (_, i) => ({ streamId: s.streamId, version: s.from + i + 1 })),
    );
    const order = (list: { streamId: string; version: number }[] | undefined) =>
      (list ?? []).map((x) => `${x.streamId}@${x.version}`).sort();
    assert.deepEqual(order(byBatch.get(w.batch)), order(expected), `batch ${w.batch} is stored whole, where its writer was told`);
    byBatch.delete(w.batch);
  }
  assert.deepEqual([...byBatch.keys()], [], 'no stored event belongs to a batch that lost');
  for (const l of reports.flatMap((r) => r.lost))
    assert.ok(
      l.eventIds.every((id) => !storedIds.has(id)),
      `nothing of the lost batch ${l.batch}`,
    );
  const log = await collect(store.readAll());
  assert.equal(log.length, storedIds.size, 'the partition logs hold each stored event once');
  assert.ok(
    log.every((e) => storedIds.has(e.id)),
    'and nothing else',
  );
}
