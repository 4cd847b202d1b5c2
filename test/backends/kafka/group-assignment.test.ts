// How the members of a `store.consume` group share partitions (src/backends/kafka/assignor.ts):
// the assignment as a pure function (balance per topic and in total, stickiness, order), then
// three members in three OS processes on a real broker, joining one after another: the
// coordinator's record of the assignment (DescribeGroups), and the work each member did on a
// load with the same number of events in every partition.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { Admin } from '@platformatic/kafka';
import { createEventStore } from '../../../src/index.ts';
import { kafka, type KafkaDriver } from '../../../src/backends/kafka/index.ts';
import { assignPartitions, decodeClaim, memberProtocols, type AssignMember } from '../../../src/backends/kafka/assignor.ts';
import { Deposited, accountEvents } from '../../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';

/** A member as it joins: its consumer name in the user data, holding `owned` as of `generation`. */
function member(
  memberId: string,
  consumer: string | undefined,
  topics: string[],
  owned: Record<string, number[]> = {},
  generation = 1,
): AssignMember {
  return { memberId, topics, claim: consumer === undefined ? undefined : { consumer, generation, owned } };
}

function partitionsOf(result: Map<string, Map<string, number[]>>, memberId: string, topic: string): number[] {
  return result.get(memberId)?.get(topic) ?? [];
}

function total(result: Map<string, Map<string, number[]>>, memberId: string): number {
  return [...(result.get(memberId)?.values() ?? [])].reduce((n, ps) => n + ps.length, 0);
}

/** Every partition of every topic assigned exactly once. */
function assertComplete(result: Map<string, Map<string, number[]>>, topics: Map<string, number>): void {
  for (const [topic, count] of topics) {
    const all = [...result.values()].flatMap((byTopic) => byTopic.get(topic) ?? []).sort((a, b) => a - b);
    assert.deepEqual(
      all,
      Array.from({ length: count }, (_, p) => p),
      `${topic}: each partition to one member`,
    );
  }
}

describe('kafka consumer groups: the assignment', () => {
  const E = 'shop.events';
  const O = 'shop.events-order';
  const R = 'shop.cg-g.redrive';

  it('gives 3 members of 6 partitions 2 each; the redrive partition to one of them', () => {
    const topics = new Map([
      [E, 6],
      [R, 1],
    ]);
    const members = ['a', 'b', 'c'].map((n) => member(`m-${n}`, n, [E, R]));
    const result = assignPartitions(members, topics);
    assertComplete(result, topics);
    for (const m of members) assert.equal(partitionsOf(result, m.memberId, E).length, 2, m.memberId);
    assert.equal(members.filter((m) => partitionsOf(result, m.memberId, R).length === 1).length, 1);
  });

  it('spreads each topic on its own, so a busy category reaches every member, and totals differ by at most one', () => {
    // 4 partitions a topic over 3 members: 2/1/1 of each; the extras rotate, totals 3/3/3.
    const topics = new Map([
      [E, 4],
      [O, 4],
      [R, 1],
    ]);
    const members = ['a', 'b', 'c'].map((n) => member(`m-${n}`, n, [E, O, R]));
    const result = assignPartitions(members, topics);
    assertComplete(result, topics);
    for (const topic of [E, O]) {
      for (const m of members)
        assert.ok([1, 2].includes(partitionsOf(result, m.memberId, topic).length), `${m.memberId} has 1 or 2 of ${topic}`);
    }
    const totals = members.map((m) => total(result, m.memberId));
    assert.ok(Math.max(...totals) - Math.min(...totals) <= 1, `totals ${totals}`);
    // Six partitions of one category over 4 members: nobody gets none.
    const wide = new Map([
      [E, 6],
      [O, 6],
    ]);
    const four = ['a', 'b', 'c', 'd'].map((n) => member(`m-${n}`, n, [E, O]));
    const spread = assignPartitions(four, wide);
    for (const m of four) assert.ok(partitionsOf(spread, m.memberId, O).length >= 1, `${m.memberId} shares the category`);
  });

  it('a join moves only what the newcomer gets; a leave only what the leaver had', () => {
    const topics = new Map([[E, 6]]);
    // Two members holding alternate partitions (as round robin left them).
    const before = [member('m-a', 'a', [E], { [E]: [0, 2, 4] }), member('m-b', 'b', [E], { [E]: [1, 3, 5] })];
    const joined = assignPartitions([...before, member('m-c', 'c', [E])], topics);
    assertComplete(joined, topics);
    const previously: [string, number[]][] = [
      ['m-a', [0, 2, 4]],
      ['m-b', [1, 3, 5]],
    ];
    for (const [id, had] of previously) {
      const now = partitionsOf(joined, id, E);
      assert.equal(now.length, 2);
      assert.ok(
        now.every((p) => had.includes(p)),
        `${id} keeps two of its own: ${now}`,
      );
    }
    assert.equal(partitionsOf(joined, 'm-c', E).length, 2);

    const three = [
      member('m-a', 'a', [E], { [E]: [0, 1] }),
      member('m-b', 'b', [E], { [E]: [2, 3] }),
      member('m-c', 'c', [E], { [E]: [4, 5] }),
    ];
    const left = assignPartitions([three[0]!, three[2]!], topics);
    assert.deepEqual(partitionsOf(left, 'm-a', E).slice(0, 2), [0, 1]);
    assert.ok(
      [4, 5].every((p) => partitionsOf(left, 'm-c', E).includes(p)),
      'c keeps its own',
    );
    assertComplete(left, topics);
  });

  it("orders members by consumer name, not the coordinator's order; a restarted member finds its partitions free; the later claim wins", () => {
    const topics = new Map([
      [E, 6],
      [R, 1],
    ]);
    const members = ['c', 'a', 'b'].map((n) => member(`${n}-${Math.random()}`, n, [E, R]));
    const one = assignPartitions(members, topics);
    const other = assignPartitions([...members].reverse(), topics);
    assert.deepEqual([...one].sort(), [...other].sort());

    // b restarted: a new member id, no claim; a and c still hold theirs.
    const restarted = assignPartitions(
      [member('a-1', 'a', [E], { [E]: [0, 1] }), member('b-2', 'b', [E]), member('c-1', 'c', [E], { [E]: [4, 5] })],
      new Map([[E, 6]]),
    );
    assert.deepEqual(partitionsOf(restarted, 'b-2', E), [2, 3]);

    // Two claims on partition 0: the member of the later generation keeps it.
    const claims = assignPartitions([member('x', 'x', [E], { [E]: [0] }, 3), member('y', 'y', [E], { [E]: [0] }, 7)], new Map([[E, 2]]));
    assert.deepEqual(partitionsOf(claims, 'y', E), [0]);
  });

  it('members without user data (an older eventfold) and members not subscribed to a topic', () => {
    const topics = new Map([
      [E, 6],
      [O, 3],
    ]);
    const result = assignPartitions([member('m-1', undefined, [E, O]), member('m-2', undefined, [E, O]), member('m-3', 'c', [E])], topics);
    assertComplete(result, topics);
    assert.deepEqual(partitionsOf(result, 'm-3', O), [], 'not subscribed: none of it');
    assert.equal(partitionsOf(result, 'm-3', E).length, 2);
  });

  it("tells the next rebalance what the member holds, in the protocol's user data", () => {
    const { protocols, holding } = memberProtocols('worker-1');
    assert.deepEqual(
      protocols.map((p) => p.name),
      ['eventfold-sticky', 'roundrobin'],
    );
    assert.deepEqual(decodeClaim(protocols[0]!.metadata), { consumer: 'worker-1', generation: -1, owned: {} });
    holding(4, [{ topic: E, partitions: [1, 4] }]);
    assert.deepEqual(decodeClaim(protocols[0]!.metadata), { consumer: 'worker-1', generation: 4, owned: { [E]: [1, 4] } });
    assert.equal(decodeClaim(Buffer.from('not json')), undefined);
  });
});

// ---------------------------------------------------------------------------------------
// Three OS processes on a real broker

interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  readonly handled: { id: string; partition: number }[];
  readonly exited: Promise<unknown>;
}

const workers: Worker[] = [];
const prefixes: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
const PARTITIONS = 6;

after(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  await Promise.allSettled(workers.map((w) => w.exited));
  await Promise.allSettled(closers.map((c) => c()));
  const admin = new Admin({ clientId: 'assignment-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const mine = (await admin.listTopics()).filter((t) => prefixes.some((p) => t.startsWith(`${p}.`)));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
    const groups = [...(await admin.listGroups()).keys()].filter((g) => prefixes.some((p) => g.startsWith(`${p}.`)));
    if (groups.length > 0) await admin.deleteGroups({ groups }).catch(() => undefined);
  } finally {
    await admin.close();
  }
});

function startWorker(prefix: string, group: string, name: string): Worker {
  const file = new URL('./group-member-worker.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [file, KAFKA_BROKERS.join(','), prefix, String(PARTITIONS), group, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const handled: { id: string; partition: number }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const msg = JSON.parse(line) as { handled?: { id: string; partition: number } };
    if (msg.handled) handled.push(msg.handled);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const worker = { name, child, handled, exited };
  workers.push(worker);
  return worker;
}

/** The coordinator's record: consumer name -> topic -> partitions. */
type Assignment = Map<string, Map<string, number[]>>;

async function stableAssignment(admin: Admin, groupId: string, members: number, topics: readonly string[]): Promise<Assignment> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const g = (await admin.describeGroups({ groups: [groupId] })).get(groupId);
    if (g && /stable/i.test(String(g.state)) && g.members.size === members) {
      const out: Assignment = new Map();
      for (const m of g.members.values()) {
        const byTopic = new Map([...(m.assignments ?? new Map())].map(([topic, a]) => [topic, [...a.partitions].sort((x, y) => x - y)]));
        // The consumer name, from the user data the member joined with (assignor.ts).
        const consumer = decodeClaim(m.metadata?.metadata)?.consumer;
        if (consumer === undefined) throw new Error(`member ${m.id} joined without eventfold's user data`);
        out.set(consumer, byTopic);
      }
      const covered = topics.every((t) => [...out.values()].flatMap((b) => b.get(t) ?? []).length > 0);
      if (covered) return out;
    }
    if (Date.now() > deadline)
      throw new Error(
        `group ${groupId} not stable with ${members} member(s): ${JSON.stringify(g ? [...g.members.values()].map((m) => m.clientId) : null)} ${g?.state}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

function streamIn(driver: KafkaDriver, partition: number, base: string): string {
  for (let i = 0; ; i++) if (driver.partitionOf(`${base}-${i}`) === partition) return `${base}-${i}`;
}

describe('kafka consumer groups: three members in three processes', () => {
  it('6 partitions: 2 each, kept across the joins; an even load is handled evenly, each event once', async () => {
    const prefix = uniqueName('kcg-assign');
    prefixes.push(prefix);
    const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions: PARTITIONS });
    const store = createEventStore({ driver, events: accountEvents });
    closers.push(() => store.close());
    await store.append(streamIn(driver, 0, 'warmup'), Deposited({ amount: 1 })); // creates the topics
    const names = driver.names;
    const groupId = names.consumerGroup('work');
    const topics = [names.events, names.redrive('work')];
    const admin = new Admin({ clientId: 'assignment-test', bootstrapBrokers: KAFKA_BROKERS });
    closers.push(() => admin.close());

    const history: Assignment[] = [];
    for (const name of ['w1', 'w2', 'w3']) {
      startWorker(prefix, 'work', name);
      history.push(await stableAssignment(admin, groupId, history.length + 1, topics));
    }
    const events = (a: Assignment, name: string): number[] => a.get(name)?.get(names.events) ?? [];
    const final = history[2]!;
    const described = JSON.stringify([...final].map(([n, b]) => [n, [...b]]));
    for (const name of ['w1', 'w2', 'w3']) assert.equal(events(final, name).length, 2, `${name} holds 2 events partitions: ${described}`);
    assert.deepEqual(['w1', 'w2', 'w3'].flatMap((n) => events(final, n)).sort(), [0, 1, 2, 3, 4, 5], 'each partition to one member');
    assert.equal(
      ['w1', 'w2', 'w3'].filter((n) => (final.get(n)?.get(names.redrive('work')) ?? []).length === 1).length,
      1,
      'the redrive partition to one member',
    );
    // The third join moved only what w3 got: w1 and w2 kept partitions they already had.
    for (const name of ['w1', 'w2']) {
      assert.ok(
        events(final, name).every((p) => events(history[1]!, name).includes(p)),
        `${name} kept its own: ${JSON.stringify(events(history[1]!, name))} -> ${JSON.stringify(events(final, name))}`,
      );
    }

    // Members apply a new assignment on their next read (at most blockMs later).
    await new Promise((r) => setTimeout(r, 1000));
    const perPartition = 20;
    const ids: string[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const streams = [streamIn(driver, p, 'acct'), streamIn(driver, p, 'cust')];
      for (let i = 0; i < perPartition; i++) {
        const e = Deposited({ amount: i + 1 });
        ids.push(e.id);
        await store.append(streams[i % 2]!, e);
      }
    }
    // The load is even: the same number of events in every partition (the warm-up event aside).
    for (let p = 0; p < PARTITIONS; p++) {
      const stored = await driver.readPartition(p, { after: undefined, limit: 1000 });
      assert.equal(stored.filter((e) => !e.streamId.startsWith('warmup')).length, perPartition, `partition ${p}`);
    }
    const handled = () => workers.reduce((n, w) => n + w.handled.length, 0);
    const deadline = Date.now() + 30_000;
    while (handled() < ids.length + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500)); // a late duplicate would show up here

    const byId = new Map<string, string[]>();
    for (const w of workers) for (const h of w.handled) byId.set(h.id, [...(byId.get(h.id) ?? []), w.name]);
    const load = ids.filter((id) => byId.has(id));
    assert.equal(load.length, ids.length, `every event handled (${load.length} of ${ids.length})`);
    assert.deepEqual(
      ids.filter((id) => byId.get(id)!.length > 1),
      [],
      'no event handled twice',
    );
    for (const w of workers) {
      const mine = w.handled.filter((h) => ids.includes(h.id));
      assert.equal(
        mine.length,
        2 * perPartition,
        `${w.name} handled the events of its 2 partitions: ${workers.map((x) => `${x.name}=${x.handled.length}`).join(' ')}`,
      );
      assert.ok(
        mine.every((h) => events(final, w.name).includes(h.partition)),
        `${w.name} handled only its own partitions`,
      );
    }

    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
  });
});
