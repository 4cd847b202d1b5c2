// pulsarProjector on the real Pulsar standalone: every event's output exactly once and in
// stream order in the committed output (read back with non-durable readers, which never get
// an aborted transaction's messages), across an aborted batch, across SIGKILLs of the
// projector process (one deterministic, between its transaction's acks and END_TXN; one at a
// random moment), dead letters for failing handlers, and bad options.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { createEventStore, InvalidArgumentError, UnknownEventTypeError } from '../../../src/index.ts';
import { pulsar, pulsarProjector } from '../../../src/backends/pulsar/index.ts';
import { PulsarClient } from '../../../src/backends/pulsar/client/client.ts';
import type { Message } from '../../../src/backends/pulsar/client/consumer.ts';
import { readLetter } from '../../../src/backends/pulsar/groups/letters.ts';
import { PulsarLog } from '../../../src/backends/pulsar/log.ts';
import { PulsarNames } from '../../../src/backends/pulsar/records.ts';
import { sqlite } from '../../../src/backends/sqlite/index.ts';
import { Audited, Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { dropNamespace } from './support.ts';
import { beforeCommit } from './txn-hooks.ts';

const namespace = uniqueName('projector');
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await dropNamespace('public', namespace);
});

const openStore = (prefix: string, partitions = 2) =>
  createEventStore({
    driver: pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions }),
    events: [Deposited, Withdrawn],
  });

/** Every message of `topic` a reader gets (committed ones only), in log order. */
async function readAll(topic: string): Promise<Message[]> {
  const client = new PulsarClient({ serviceUrl: PULSAR_SERVICE_URL });
  const log = new PulsarLog(client);
  try {
    const out: Message[] = [];
    for (let at = 0n, pages = 0; pages < 1000; pages++) {
      const page = await log.page(topic, at, 500);
      out.push(...page.messages);
      if (page.end || page.next <= at) break;
      at = page.next;
    }
    return out;
  } finally {
    await log.close();
    await client.close();
  }
}

interface Output {
  readonly id: string;
  readonly streamId: string;
  readonly version: number;
}

/** Lost and duplicated event ids, and streams whose outputs are out of version order. */
function tally(messages: readonly Message[], ids: ReadonlySet<string>): { lost: number; duplicated: number; disordered: string[] } {
  const seen = new Map<string, number>();
  const last = new Map<string, number>();
  const disordered = new Set<string>();
  for (const m of messages) {
    const value = JSON.parse(Buffer.from(m.payload).toString()) as Output;
    assert.equal(m.key, value.streamId, 'key = stream id');
    seen.set(value.id, (seen.get(value.id) ?? 0) + 1);
    if ((last.get(value.streamId) ?? 0) >= value.version) disordered.add(value.streamId);
    last.set(value.streamId, value.version);
  }
  return {
    lost: [...ids].filter((id) => !seen.has(id)).length,
    duplicated: [...seen.values()].filter((n) => n > 1).length,
    disordered: [...disordered],
  };
}

/** `streams` streams of `perStream` events, appended two at a time (one commit, one entry, carries two events). */
async function seed(store: ReturnType<typeof openStore>, streams: number, perStream: number): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let v = 0; v < perStream; v += 2) {
    for (let s = 0; s < streams; s++) {
      const events = [Deposited({ amount: v + 1 }), Withdrawn({ amount: 1 })];
      await store.append(`account-${s}`, events);
      for (const e of events) ids.add(e.id);
    }
  }
  return ids;
}

const worker = new URL('./projector-worker.ts', import.meta.url).pathname;

function runWorker(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let out = '';
  let stderr = '';
  let onBusy!: () => void;
  const busy = new Promise<void>((resolve) => (onBusy = resolve));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      const line = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
      out = out.slice(nl + 1);
      lines.push(line);
      if (typeof line.handled === 'number' && line.handled >= 60) onBusy();
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  void exit.then(() => clearTimeout(timer));
  return { lines, busy, exit, kill: () => child.kill('SIGKILL') };
}

/** Open transactions that ack on `subscription` of any of `topics` (the admin API's list). */
async function openAcking(topics: readonly string[], subscription: string): Promise<number> {
  const res = await fetch(`${PULSAR_URL}/admin/v3/transactions/slowTransactions/0`, { signal: AbortSignal.timeout(10_000) });
  const open = (await res.json()) as Record<string, { ackedPartitions?: Record<string, Record<string, unknown>> }>;
  return Object.values(open).filter((t) => topics.some((topic) => t.ackedPartitions?.[topic]?.[subscription] !== undefined)).length;
}

describe('pulsar: projector', () => {
  it('projects every event once, in stream order, across an aborted batch', { timeout: 40_000 }, async (t) => {
    const prefix = uniqueName('once');
    const store = openStore(prefix);
    const output = `o-${prefix}`;
    // One injected failure before END_TXN: that batch is aborted and must come back, in order.
    let commits = 0;
    const restore = beforeCommit(async () => {
      if (++commits === 2) throw new Error('injected commit failure');
    });
    try {
      const ids = await seed(store, 6, 10);
      const errors: unknown[] = [];
      const projector = pulsarProjector(store, {
        group: 'once',
        batchSize: 8,
        onError: (e) => errors.push(e),
        handle: (event) => ({
          topic: output,
          key: event.streamId,
          value: JSON.stringify({ id: event.id, streamId: event.streamId, version: event.version }),
        }),
      });
      await projector.caughtUp();
      await projector.stop();
      const messages = await readAll(`persistent://public/${namespace}/${output}`);
      const { lost, duplicated, disordered } = tally(messages, ids);
      t.diagnostic(`events ${ids.size}, outputs ${messages.length}, commits ${commits}, errors ${errors.map(String).join('; ')}`);
      assert.ok(
        errors.some((e) => /injected commit failure/.test(String(e))),
        'the injected failure aborted a batch',
      );
      assert.equal(lost, 0, 'no output lost');
      assert.equal(duplicated, 0, 'no output duplicated');
      assert.deepEqual(disordered, [], 'each stream in version order');
      assert.equal(messages.length, ids.size);
      assert.equal(projector.processed, ids.size);
    } finally {
      restore();
      await store.close();
    }
  });

  it('kill -9 between acks and commit, then at random: every output exactly once, in order', { timeout: 90_000 }, async (t) => {
    const prefix = uniqueName('kill');
    const group = 'totals';
    const output = `o-${prefix}`;
    const store = openStore(prefix);
    const ids = await seed(store, 10, 20);
    await store.close();
    const names = new PulsarNames('public', namespace, prefix);
    const subscription = names.projectorSubscription(group);
    const partitions = [names.partition(0), names.partition(1)];
    const args = [namespace, prefix, group, output];

    // 1. Deterministic: dies with a batch's outputs sent and its entries acked in the open transaction.
    const first = runWorker(args, { PROJECTOR_KILL: 'before-commit' });
    const firstExit = await first.exit;
    assert.equal(firstExit.signal, 'SIGKILL', `first run died by SIGKILL (stderr: ${firstExit.stderr})`);
    assert.ok(
      first.lines.some((l) => l.killing),
      'first run killed itself before END_TXN',
    );
    const leftOpen = await openAcking(partitions, subscription);
    assert.ok(leftOpen > 0, 'the killed run left a transaction holding acks on the subscription');

    // 2. Random: a slow run killed from outside once it is busy.
    const startedAt = Date.now();
    const second = runWorker(args, { PROJECTOR_DELAY_MS: '5' });
    await Promise.race([second.busy, second.exit]);
    const delay = Math.floor(Math.random() * 300);
    await new Promise((r) => setTimeout(r, delay));
    second.kill();
    const secondExit = await second.exit;
    assert.equal(secondExit.signal, 'SIGKILL', `second run was killed (stderr: ${secondExit.stderr})`);
    const secondMs = Date.now() - startedAt;

    // 3. A run to the end; it exits on its own once it has closed the store.
    const third = runWorker(args);
    const thirdExit = await third.exit;
    assert.equal(thirdExit.code, 0, `third run exited cleanly (stderr: ${thirdExit.stderr})`);
    const caught = third.lines.find((l) => l.caughtUp);
    assert.ok(caught, 'third run caught up');

    const messages = await readAll(`persistent://${names.namespace}/${output}`);
    const { lost, duplicated, disordered } = tally(messages, ids);
    t.diagnostic(
      `events ${ids.size}; committed outputs ${messages.length} (lost ${lost}, duplicated ${duplicated}, streams out of order ${disordered.length}); ` +
        `first run left ${leftOpen} open transaction(s); second run killed ${delay} ms after its 60th handler call (${secondMs} ms in all); third run ${JSON.stringify(caught)}`,
    );
    assert.equal(lost, 0, 'no output lost');
    assert.equal(duplicated, 0, 'no output duplicated');
    assert.deepEqual(disordered, [], 'each stream in version order');
    assert.equal(messages.length, ids.size, 'exactly one output per event');
  });

  it('two live instances share the partitions; the survivor takes over when one stops, each output once', {
    timeout: 40_000,
  }, async (t) => {
    const prefix = uniqueName('pair');
    const output = `o-${prefix}`;
    const [one, two] = [openStore(prefix), openStore(prefix)];
    try {
      const ids = await seed(one, 8, 10);
      const by = { a: 0, b: 0 };
      const handle = (who: 'a' | 'b') => async (event: { id: string; streamId: string; version: number }) => {
        by[who]++;
        await new Promise((r) => setTimeout(r, 5));
        return {
          topic: output,
          key: event.streamId,
          value: JSON.stringify({ id: event.id, streamId: event.streamId, version: event.version }),
        };
      };
      const a = pulsarProjector(one, { group: 'pair', batchSize: 5, handle: handle('a') });
      const b = pulsarProjector(two, { group: 'pair', batchSize: 5, handle: handle('b') });
      await Promise.all([a.started, b.started]);
      for (let i = 0; i < 400 && (by.a < 5 || by.b < 5); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(by.a >= 5 && by.b >= 5, `both instances handle events (a ${by.a}, b ${by.b})`);
      await a.stop();
      const aStopped = a.processed;
      await b.caughtUp();
      await b.stop();
      const messages = await readAll(`persistent://public/${namespace}/${output}`);
      const { lost, duplicated, disordered } = tally(messages, ids);
      t.diagnostic(
        `events ${ids.size}; a processed ${aStopped} (handled ${by.a}), b ${b.processed} (handled ${by.b}); outputs ${messages.length}`,
      );
      assert.equal(lost, 0, 'no output lost');
      assert.equal(duplicated, 0, 'no output duplicated');
      assert.deepEqual(disordered, [], 'each stream in version order');
      assert.equal(aStopped + b.processed, ids.size, 'each event committed by one instance');
      assert.ok(b.processed > ids.size / 2, "the survivor took the stopped one's partition over");
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('a live instance takes over the partition of one killed before END_TXN, fencing its open transaction', {
    timeout: 60_000,
  }, async (t) => {
    const prefix = uniqueName('takeover');
    const group = 'takeover';
    const output = `o-${prefix}`;
    const store = openStore(prefix);
    try {
      const ids = await seed(store, 10, 20);
      const live = pulsarProjector(store, {
        group,
        batchSize: 5,
        handle: async (event) => {
          await new Promise((r) => setTimeout(r, 5));
          return {
            topic: output,
            key: event.streamId,
            value: JSON.stringify({ id: event.id, streamId: event.streamId, version: event.version }),
          };
        },
      });
      await live.started;
      const killed = runWorker([namespace, prefix, group, output], { PROJECTOR_KILL: 'before-commit' });
      const exit = await killed.exit;
      assert.equal(exit.signal, 'SIGKILL', `the worker died by SIGKILL (stderr: ${exit.stderr})`);
      assert.ok(
        killed.lines.some((l) => l.killing),
        'the worker killed itself before END_TXN',
      );
      await live.caughtUp();
      await live.stop();
      const messages = await readAll(`persistent://public/${namespace}/${output}`);
      const { lost, duplicated, disordered } = tally(messages, ids);
      t.diagnostic(
        `events ${ids.size}; live instance processed ${live.processed}; outputs ${messages.length}; out of order ${disordered.length}`,
      );
      assert.equal(lost, 0, 'no output lost');
      assert.equal(duplicated, 0, 'no output duplicated');
      assert.deepEqual(disordered, [], 'each stream in version order');
      assert.ok(live.processed < ids.size, 'the worker committed a batch before it died');
    } finally {
      await store.close();
    }
  });

  it("start: 'end' skips what was there before the subscription, then projects what comes after", { timeout: 30_000 }, async () => {
    const prefix = uniqueName('end');
    const store = openStore(prefix);
    const output = `o-${prefix}`;
    try {
      for (let s = 0; s < 4; s++) await store.append(`acct-${s}`, Deposited({ amount: 1 }));
      const projector = pulsarProjector(store, {
        group: 'end',
        start: 'end',
        handle: (event) => ({ topic: output, value: event.streamId }),
      });
      await projector.caughtUp();
      assert.equal(projector.processed, 0, 'nothing before the subscription');
      await store.append('acct-late', Deposited({ amount: 2 }));
      await projector.caughtUp();
      await projector.stop();
      assert.equal(projector.processed, 1);
      assert.deepEqual(
        (await readAll(`persistent://public/${namespace}/${output}`)).map((m) => Buffer.from(m.payload).toString()),
        ['acct-late'],
      );
    } finally {
      await store.close();
    }
  });

  it('dead-letters a failing handler after its retries, in the transaction, and goes on', { timeout: 30_000 }, async () => {
    const prefix = uniqueName('dlq');
    const store = openStore(prefix, 1);
    const output = `o-${prefix}`;
    try {
      for (let amount = 1; amount <= 10; amount++) await store.append('acct-1', Deposited({ amount }));
      // An event of a type the projecting store does not know: a decode-stage dead letter.
      const wider = createEventStore({
        driver: pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 1 }),
        events: [Deposited, Withdrawn, Audited],
      });
      await wider.append('audit-1', Audited({ by: 'someone' }));
      await wider.close();
      let calls = 0;
      const projector = pulsarProjector(store, {
        group: 'dlq',
        retries: 2,
        retryDelayMs: 1,
        handle: (event) => {
          calls++;
          const amount = event.type === 'Deposited' ? event.data.amount : -event.data.amount;
          if (amount === 7) throw new Error(`boom ${amount}`);
          return { topic: output, key: event.streamId, value: String(amount), properties: { 'ef-source': event.id } };
        },
      });
      await projector.caughtUp();
      assert.equal(projector.deadLettered, 2);
      assert.equal(projector.processed, 11);
      assert.equal(calls, 9 + 3, 'the failing event ran once and was retried twice');
      await store.close(); // closes the projector too
      await projector.done;

      const outputs = await readAll(`persistent://public/${namespace}/${output}`);
      assert.deepEqual(
        outputs.map((m) => Number(Buffer.from(m.payload).toString())),
        [1, 2, 3, 4, 5, 6, 8, 9, 10],
        'later events still projected, in order',
      );
      assert.ok(
        outputs.every((m) => typeof m.properties['ef-source'] === 'string'),
        'properties kept',
      );
      const letters = (await readAll(projector.deadLetterTopic)).map((m) => ({ read: readLetter(m), properties: m.properties }));
      assert.equal(letters.length, 2);
      const decode = letters.find((l) => l.properties['ef-dlq-stage'] === 'decode');
      assert.ok(decode?.read && 'letter' in decode.read, 'the unknown type is a decode-stage dead letter');
      assert.equal(decode.read.letter.event.streamId, 'audit-1');
      assert.equal(decode.properties['ef-dlq-code'], new UnknownEventTypeError('Audited', { streamId: 'x', version: 1 }).code);
      const letter = letters.find((l) => l.properties['ef-dlq-stage'] === 'handle')!;
      assert.ok(letter.read && 'letter' in letter.read, "a dead letter of the consumer groups' layout");
      assert.equal(letter.read.letter.reason, 'boom 7');
      assert.equal(letter.read.letter.deliveries, 3);
      assert.equal(letter.read.letter.event.streamId, 'acct-1');
    } finally {
      await store.close();
    }
  });

  it("refuses bad options, a store on another backend, and the store's own topics as outputs", { timeout: 30_000 }, async () => {
    const local = createEventStore({ driver: sqlite(), events: [Deposited, Withdrawn] });
    assert.throws(() => pulsarProjector(local, { group: 'g', handle: () => undefined }), InvalidArgumentError);
    await local.close();
    const prefix = uniqueName('bad');
    const store = openStore(prefix, 1);
    try {
      const handle = () => undefined;
      for (const bad of [
        { group: 'bad group', handle },
        { group: 'g', handle: 'nope' },
        { group: 'g', handle, batchSize: 0 },
        { group: 'g', handle, retries: -1 },
        { group: 'g', handle, transactionTimeoutMs: 10 },
        { group: 'g', handle, start: 'middle' },
      ]) {
        assert.throws(() => pulsarProjector(store, bad as never), InvalidArgumentError, JSON.stringify(bad));
      }
      // An output naming the store's events topic (or a malformed name) is dead-lettered, never written.
      await store.append('acct-1', Deposited({ amount: 1 }));
      await store.append('acct-1', Deposited({ amount: 2 }));
      const names = new PulsarNames('public', namespace, prefix);
      const projector = pulsarProjector(store, {
        group: 'own',
        retries: 0,
        handle: (event) => ({ topic: event.version === 1 ? names.partition(0) : `${prefix}-state`, value: 'x' }),
      });
      await projector.caughtUp();
      assert.equal(projector.deadLettered, 2);
      await projector.stop();
      const letters = await readAll(projector.deadLetterTopic);
      assert.deepEqual(
        letters.map((m) => /store's own topics/.test(m.properties['ef-reason'] ?? '')),
        [true, true],
      );
      assert.equal(letters[0]!.properties['ef-dlq-code'], new InvalidArgumentError('x').code);
    } finally {
      await store.close();
    }
  });
});
