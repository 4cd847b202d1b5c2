// The consumer-group conformance suite: `store.consume` (competing consumers, reset, a consumer
// killed mid-batch, dead letters and redrive, poison by delivery count, undecodable payloads),
// run unchanged against every backend with native consumer groups (Redis, Kafka, PostgreSQL)
// and a user's own driver, with the runner it is given (node:test, vitest, jest).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { createEventStore, type EventOf, type EventStore, type EventStoreDriver } from '../../index.ts';
import { afterSuite, type TestRunner, uniqueName } from '../runner.ts';
import { applyToReadModel, createReadModel } from './read-model.ts';
import { Deposited, Withdrawn } from './fixtures.ts';

export const groupEvents = [Deposited, Withdrawn] as const;
export type GroupEvent = EventOf<typeof groupEvents>;

export interface ConsumerGroupTarget {
  readonly name: string;
  /** A driver of the store `prefix` (2 partitions); the same prefix again opens the same data. */
  driver(prefix: string): EventStoreDriver;
  /**
   * How the "consumer killed mid-batch" test opens the same driver in a child process: a module
   * (path or URL, importable by plain `node` with `execArgv`) exporting
   * `openDriver(prefix: string, arg?: string): EventStoreDriver | Promise<EventStoreDriver>`.
   */
  readonly worker: GroupWorker;
  /** Entries of the group delivered or not yet delivered, and not acknowledged. */
  unacknowledged(store: EventStore<GroupEvent>, prefix: string, group: string): Promise<number>;
  /** Resolves once `members` consumers of the group are in it and it is ready to hand out new events. */
  ready(store: EventStore<GroupEvent>, prefix: string, group: string, members: number): Promise<void>;
  /** `claimIdleMs` under which a consumer that stopped mid-event hands it on quickly. */
  readonly takeoverMs: number;
  /** Backend-specific checks right after the worker was killed (e.g. what it recorded in the group). */
  afterKill?(store: EventStore<GroupEvent>, prefix: string, group: string): Promise<void>;
  cleanup?(prefixes: readonly string[]): Promise<void>;
}

export interface GroupWorker {
  readonly module: string | URL;
  /** Passed to `openDriver` as its second argument (a connection string, say). */
  readonly arg?: string;
  /** Node options for the child process, e.g. `['--import', 'tsx']`. Default none. */
  readonly execArgv?: readonly string[];
}

export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The child process of the "killed mid-batch" test: this file's sibling, .ts in the sources and .js when built. */
const workerFile = fileURLToPath(new URL(`./group-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** `<driver module URL> <arg> <prefix> <group> <read model file> <die after N>` (see group-worker.ts). */
function workerArgs(worker: GroupWorker, prefix: string, file: string): string[] {
  const module =
    worker.module instanceof URL || /^[a-z][a-z0-9+.-]*:/i.test(worker.module)
      ? String(worker.module)
      : String(pathToFileURL(worker.module));
  return [module, worker.arg ?? '', prefix, 'projection', file, '4'];
}

/** Waits until the group has dead letters and returns them; expects exactly one. */
export async function oneDeadLetter(
  store: EventStore<GroupEvent>,
  group: string,
): Promise<Awaited<ReturnType<ReturnType<EventStore<GroupEvent>['deadLetters']>['list']>>> {
  let letters: Awaited<ReturnType<ReturnType<EventStore<GroupEvent>['deadLetters']>['list']>> = [];
  await until(async () => {
    letters = await store.deadLetters(group).list();
    return letters.length >= 1;
  }, 'the letter to be readable');
  assert.equal(letters.length, 1, 'one dead letter');
  return letters;
}

/** The dead letter of the first event of `streamId`, whose payload does not decode. */
export function assertUndecodableLetter(letter: Awaited<ReturnType<typeof oneDeadLetter>>[number] | undefined, streamId: string): void {
  assert.ok(letter);
  assert.match(letter.reason, new RegExp(`cannot decode Deposited at version 1 of stream "${streamId}"`));
  assert.equal(letter.event, undefined, 'the letter keeps the raw event; it does not decode');
  assert.equal(letter.streamId, streamId);
  assert.equal(letter.version, 1);
}

/** Appends `count` deposits (amounts 1…count) over 7 streams; returns their ids in order. */
export async function appendMany(store: EventStore<GroupEvent>, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    const e = Deposited({ amount: i });
    ids.push(e.id);
    await store.append(`account-${i % 7}`, e);
  }
  return ids;
}

/**
 * Registers the consumer-group suite with a test runner: `runConsumerGroupConformance({ describe,
 * it, after }, target)`. For drivers with native consumer groups (`store.consume`).
 */
export function runConsumerGroupConformance(runner: TestRunner, target: ConsumerGroupTarget): void {
  const { describe } = runner;
  const dir = mkdtempSync(join(tmpdir(), 'eventfold-groups-'));
  const prefixes: string[] = [];
  const stores: EventStore<GroupEvent>[] = [];

  function open(prefix: string, codec?: Parameters<typeof createEventStore>[0]['codec']): EventStore<GroupEvent> {
    if (!prefixes.includes(prefix)) prefixes.push(prefix);
    const store = createEventStore({ driver: target.driver(prefix), events: groupEvents, ...(codec ? { codec } : {}) });
    stores.push(store);
    return store;
  }

  describe(`consumer groups: ${target.name}`, () => {
    /** `it`, closing the stores the test opened when it ends. */
    const it = (name: string, fn: () => Promise<void>): void => {
      runner.it(name, async () => {
        try {
          await fn();
        } finally {
          await Promise.all(stores.splice(0).map((s) => s.close()));
        }
      });
    };
    afterSuite(runner, async () => {
      rmSync(dir, { recursive: true, force: true });
      await target.cleanup?.(prefixes);
    });

    it('shares a group among competing consumers: every event handled once; groups are independent', async () => {
      const prefix = uniqueName('cg-compete');
      const store = open(prefix);
      await store.append('account-0', Deposited({ amount: 1000 })); // before the groups: not theirs
      const seen = new Map<string, string[]>();
      const record = (consumer: string) => (e: { id: string }) => {
        seen.set(e.id, [...(seen.get(e.id) ?? []), consumer]);
      };
      const c1 = store.consume({ group: 'workers', consumer: 'c1', start: 'end', handler: record('c1'), batchSize: 5, blockMs: 100 });
      const c2 = store.consume({ group: 'workers', consumer: 'c2', start: 'end', handler: record('c2'), batchSize: 5, blockMs: 100 });
      const other: string[] = [];
      const audit = store.consume({ group: 'audit', consumer: 'a1', start: 'end', handler: (e) => void other.push(e.id), blockMs: 100 });
      await target.ready(store, prefix, 'workers', 2);
      await target.ready(store, prefix, 'audit', 1);
      const ids = await appendMany(store, 60);
      await until(() => c1.handled + c2.handled === 60 && audit.handled === 60, 'both groups to finish');
      await new Promise((r) => setTimeout(r, 300)); // nothing handled twice, late
      await Promise.all([c1.stop(), c2.stop(), audit.stop()]);
      assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
      assert.ok(
        [...seen.values()].every((by) => by.length === 1),
        'no event handled twice within the group',
      );
      assert.ok(c1.handled > 0 && c2.handled > 0, `both consumers got work (c1 ${c1.handled}, c2 ${c2.handled})`);
      assert.deepEqual(other.sort(), [...ids].sort(), 'the other group got every event too');
    });

    it('a reset group replays from the start; a group created at the end sees only new events', async () => {
      const prefix = uniqueName('cg-reset');
      const store = open(prefix);
      await appendMany(store, 10);
      const late: number[] = [];
      const tail = store.consume({
        group: 'tail',
        consumer: 't',
        start: 'end',
        handler: (e) => void late.push(e.data.amount),
        blockMs: 100,
      });
      let count = 0;
      const first = store.consume({ group: 'replay', consumer: 'r', handler: () => void count++, blockMs: 100 });
      await until(() => count === 10, 'first pass');
      await first.stop();
      await store.resetConsumerGroup('replay');
      const again = store.consume({ group: 'replay', consumer: 'r', handler: () => void count++, blockMs: 100 });
      await until(() => count === 20, 'replay after reset');
      await again.stop();
      await target.ready(store, prefix, 'tail', 1);
      await store.append('account-new', Deposited({ amount: 99 }));
      await until(() => late.length === 1, 'the tail group to see the new event');
      await new Promise((r) => setTimeout(r, 200));
      await tail.stop();
      assert.deepEqual(late, [99]);
      assert.equal(count, 20);
    });

    it('a consumer SIGKILLed mid-batch: the survivor gets its work and the read model applies each event once', async () => {
      const prefix = uniqueName('cg-killed');
      const store = open(prefix);
      const ids = await appendMany(store, 20);
      const file = join(dir, `${prefix}.db`);
      const db = new DatabaseSync(file);
      db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000');
      createReadModel(db);

      const worker = spawn(process.execPath, [...(target.worker.execArgv ?? []), workerFile, ...workerArgs(target.worker, prefix, file)], {
        stdio: 'inherit',
      });
      const exit = await new Promise<NodeJS.Signals | null>((resolve) => worker.once('exit', (_code, signal) => resolve(signal)));
      assert.equal(exit, 'SIGKILL', 'the worker died mid-batch');
      const left = await target.unacknowledged(store, prefix, 'projection');
      assert.ok(left > 0 && left <= 17, `the dead consumer acknowledged 3 and left work unacknowledged (${left} of 20 left)`);
      await target.afterKill?.(store, prefix, 'projection');

      const survivor = store.consume({
        group: 'projection',
        consumer: 'survivor',
        claimIdleMs: target.takeoverMs,
        blockMs: 100,
        handler: (e) => applyToReadModel(db, e, 'survivor'),
      });
      await until(
        () => (db.prepare('SELECT count(*) AS n FROM applied').get() as { n: number }).n === 20,
        'the read model to hold all 20 events',
      );
      await until(async () => (await target.unacknowledged(store, prefix, 'projection')) === 0, 'everything acknowledged');
      await survivor.stop();

      const applied = db.prepare('SELECT event_id FROM applied ORDER BY event_id').all() as { event_id: string }[];
      assert.deepEqual(
        applied.map((r) => r.event_id),
        [...ids].sort(),
        'each event applied exactly once',
      );
      const attempts = db.prepare('SELECT event_id, count(*) AS n FROM attempts GROUP BY event_id HAVING n > 1').all() as {
        event_id: string;
        n: number;
      }[];
      // The event the worker wrote but never acknowledged was delivered again; the read model's
      // idempotent write absorbed it.
      assert.equal(attempts.length, 1, `exactly one event was delivered twice, got ${JSON.stringify(attempts)}`);
      assert.equal((db.prepare("SELECT count(*) AS n FROM attempts WHERE consumer = 'doomed'").get() as { n: number }).n, 4);
      db.close();
    });

    it('dead-letters an event whose handler keeps failing, acknowledged with it; it can be listed and redriven without a copy in the log', async () => {
      const prefix = uniqueName('cg-dlq');
      const store = open(prefix);
      await appendMany(store, 5);
      let broken = true;
      const handled: number[] = [];
      const consumer = store.consume({
        group: 'mailer',
        consumer: 'm1',
        retries: 2,
        retryDelayMs: 1,
        blockMs: 100,
        handler: (e) => {
          if (broken && e.data.amount === 3) throw new Error('smtp down');
          handled.push(e.data.amount);
        },
      });
      await until(() => consumer.handled === 4 && consumer.deadLettered === 1, 'four handled and one dead-lettered');
      const letters = await oneDeadLetter(store, 'mailer');
      const [letter] = letters;
      assert.match(letter!.reason, /handler failed 3 times: smtp down/);
      assert.equal(letter!.event?.data.amount, 3);
      assert.equal(letter!.type, 'Deposited');
      assert.equal(letter!.deliveries, 1);
      assert.ok(Math.abs(letter!.deadAt - Date.now()) < 60_000);
      await until(async () => (await target.unacknowledged(store, prefix, 'mailer')) === 0, 'the dead letter to be acknowledged');

      broken = false;
      assert.equal(await store.deadLetters('mailer').redrive(), 1);
      await until(() => handled.includes(3), 'the redriven event to be handled');
      await consumer.stop();
      assert.deepEqual(await store.deadLetters('mailer').list(), []);
      assert.deepEqual(
        handled.sort((a, b) => a - b),
        [1, 2, 3, 4, 5],
      );
      let inLog = 0;
      for await (const _ of store.readAll()) inLog++;
      assert.equal(inLog, 5, 'the redrive did not append a copy');
      assert.equal(await store.deadLetters('mailer').redrive(), 0, 'nothing left to redrive');
    });

    it('dead-letters an event delivered more than maxDeliveries times without running the handler again', async () => {
      const store = open(uniqueName('cg-poison'));
      await store.append('account-p', Deposited({ amount: 1 }));
      const calls: string[] = [];
      // Two consumers in turn take the event and die with it in hand (stopped mid-handler).
      for (const name of ['first', 'second']) {
        const crash = new AbortController();
        const c = store.consume({
          group: 'g',
          consumer: name,
          maxDeliveries: 2,
          claimIdleMs: target.takeoverMs,
          blockMs: 50,
          handler: () =>
            new Promise<void>((_, reject) => {
              calls.push(name);
              crash.signal.addEventListener('abort', () => reject(new Error('crashed')));
            }),
        });
        await until(() => calls.includes(name), `${name} to take the event`);
        const stopped = c.stop();
        crash.abort();
        await stopped;
      }
      await new Promise((r) => setTimeout(r, target.takeoverMs));
      const third = store.consume({
        group: 'g',
        consumer: 'third',
        maxDeliveries: 2,
        claimIdleMs: target.takeoverMs,
        blockMs: 50,
        handler: () => void calls.push('third'),
      });
      await until(() => third.deadLettered === 1, 'the poison event to be dead-lettered');
      await third.stop();
      assert.deepEqual(calls, ['first', 'second'], 'the handler did not run a third time');
      const letters = await oneDeadLetter(store, 'g');
      assert.equal(letters[0]?.deliveries, 3);
      assert.match(letters[0]!.reason, /delivered 3 times/);
    });

    it('dead-letters an event that cannot be decoded, naming it, and goes on with the rest', async () => {
      const prefix = uniqueName('cg-undecodable');
      const store = open(prefix);
      // A writer with a broken codec stores a payload that is not JSON under the 'json' codec name.
      const broken = open(prefix, { name: 'json', encode: () => new TextEncoder().encode('{"amount":'), decode: () => undefined });
      await broken.append('account-u', Deposited({ amount: 1 }));
      await store.append('account-u', Deposited({ amount: 2 }));
      const handled: number[] = [];
      const c = store.consume({ group: 'g', consumer: 'c', blockMs: 50, handler: (e) => void handled.push(e.data.amount) });
      await until(() => c.handled === 1 && c.deadLettered === 1, 'one handled, one dead-lettered');
      await c.stop();
      assert.deepEqual(handled, [2]);
      const letters = await oneDeadLetter(store, 'g');
      assertUndecodableLetter(letters[0], 'account-u');
    });
  });
}
