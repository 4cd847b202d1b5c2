// appendMany across partitions with OS processes on the real Pulsar standalone: a writer
// SIGKILLed between its sends and END_TXN (nothing of its transaction is ever visible, and the
// next writer waits no longer than the transaction timeout), and transfers between accounts in
// different partitions from two processes at once (money is conserved, every transfer is
// visible whole or not at all, no PartitionFencedError reaches a caller).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import type { PulsarDriverOptions } from '../../../src/backends/pulsar/index.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { createEventStore } from '../../../src/index.ts';
import { accountEvents, Deposited } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { dropNamespace } from './support.ts';

const namespace = uniqueName('txn-processes');
after(() => dropNamespace('public', namespace));

const PARTITIONS = 3;
const TXN_TIMEOUT_MS = 4000;
const options = (prefix: string): PulsarDriverOptions => ({
  serviceUrl: PULSAR_SERVICE_URL,
  adminUrl: PULSAR_URL,
  namespace,
  prefix,
  partitions: PARTITIONS,
  transactionTimeoutMs: TXN_TIMEOUT_MS,
  routing: true,
});
const worker = new URL('./transfer-worker.ts', import.meta.url).pathname;

/** A worker process: its JSON lines as they come, and its exit. */
function startWorker(prefix: string, args: readonly string[]) {
  const child = spawn(process.execPath, [worker, JSON.stringify(options(prefix)), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let buffered = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const line = async (key: string, timeoutMs = 60_000): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find((l) => key in l);
      if (found) return found;
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`worker ${args[0]} printed no "${key}" line: ${err}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  const done = async () => {
    const exit = await exited;
    assert.equal(exit.code, 0, `worker ${args[0]} exited ${exit.code}: ${err}`);
    return lines;
  };
  return { child, line, done, exited };
}

function streamIn(partition: number, base: string): string {
  for (let i = 0; ; i++) if (partitionOf(`${base}-${i}`, PARTITIONS) === partition) return `${base}-${i}`;
}

async function readStreams(prefix: string, streams: readonly string[]) {
  const store = createEventStore({ driver: pulsar(options(prefix)), events: accountEvents });
  try {
    const out = [];
    for (const s of streams) {
      const events = [];
      for await (const e of store.readStream(s)) events.push(e);
      out.push(events);
    }
    return out;
  } finally {
    await store.close();
  }
}

describe('pulsar: appendMany across partitions, across processes', () => {
  it('a writer SIGKILLed between its sends and END_TXN: nothing of it is ever visible; the next writer waits at most the transaction timeout', {
    timeout: 120_000,
  }, async (t) => {
    const prefix = uniqueName('kill');
    const [a, b] = [0, 2].map((p) => streamIn(p, 'account'));
    const seed = createEventStore({ driver: pulsar(options(prefix)), events: accountEvents });
    await seed.appendMany([
      { streamId: a!, events: Deposited({ amount: 1 }) },
      { streamId: b!, events: Deposited({ amount: 1 }) },
    ]);
    await seed.close();

    const victim = startWorker(prefix, ['kill', a!, b!]);
    const began = Number((await victim.line('began')).began);
    await victim.line('sent'); // every send has its receipt: the messages are in the log, the transaction open
    victim.child.kill('SIGKILL');
    assert.equal((await victim.exited).signal, 'SIGKILL');

    const other = startWorker(prefix, ['append', a!, b!]);
    const [result] = await other.done();
    const finished = Number(result!.finished);
    assert.deepEqual(result!.versions, [2, 2], 'the other writer appended right after the seed: versions without a gap');
    // Its claims waited for the coordinator to abort the dead transaction…
    assert.ok(finished >= began + TXN_TIMEOUT_MS, `the other writer finished ${finished - began} ms after the transaction began`);
    // …and no longer than the timeout (plus process start and two claims on a loaded machine).
    assert.ok(finished <= began + TXN_TIMEOUT_MS + 15_000, `the other writer finished ${finished - began} ms after the transaction began`);

    const [sa, sb] = await readStreams(prefix, [a!, b!]);
    for (const events of [sa!, sb!]) {
      assert.deepEqual(
        events.map((e) => [e.version, e.data.amount]),
        [
          [1, 1],
          [2, 1],
        ],
        'nothing of the killed transaction (666) is visible; versions 1, 2',
      );
    }
    t.diagnostic(`the other writer finished ${finished - began} ms after the killed transaction began (timeout ${TXN_TIMEOUT_MS} ms)`);
  });

  it('transfers between accounts of different partitions from 2 processes: money is conserved, each transfer whole, no fenced error reaches a caller', {
    timeout: 240_000,
  }, async (t) => {
    const prefix = uniqueName('transfers');
    const accounts = [0, 1, 2].map((p) => streamIn(p, 'account'));
    const seed = createEventStore({ driver: pulsar(options(prefix)), events: accountEvents });
    await seed.appendMany(accounts.map((streamId) => ({ streamId, events: Deposited({ amount: 100 }) })));
    await seed.close();

    const LOOPS = 2;
    const PER_LOOP = 6;
    const startAt = Date.now() + 4000;
    const runs = ['p1', 'p2'].map((name) =>
      startWorker(prefix, ['transfers', name, JSON.stringify(accounts), String(LOOPS), String(PER_LOOP), String(startAt)]),
    );
    const summaries = (await Promise.all(runs.map((r) => r.done()))).map(
      (lines) => lines.at(-1) as { transfers: number; conflicts: number; fenced: number; errors: string[] },
    );
    for (const s of summaries) {
      assert.deepEqual(s.errors, []);
      assert.equal(s.fenced, 0, 'no PartitionFencedError reached a caller');
      assert.equal(s.transfers, LOOPS * PER_LOOP);
    }

    const streams = await readStreams(prefix, accounts);
    const balance = (events: (typeof streams)[number]) =>
      events.reduce((sum, e) => sum + (e.type === 'Deposited' ? e.data.amount : -e.data.amount), 0);
    assert.equal(
      streams.reduce((sum, events) => sum + balance(events), 0),
      300,
      'the sum of the balances is what was deposited',
    );
    for (const events of streams) {
      assert.deepEqual(
        events.map((e) => e.version),
        events.map((_, i) => i + 1),
        'versions 1..n',
      );
    }
    // Every transfer is visible whole: one Withdrawn and one Deposited of the same amount.
    const legs = new Map<string, { type: string; amount: number; stream: string }[]>();
    for (const events of streams) {
      for (const e of events) {
        const transfer = e.metadata.transfer;
        if (transfer === undefined) continue;
        legs.set(transfer, [...(legs.get(transfer) ?? []), { type: e.type, amount: e.data.amount, stream: e.streamId }]);
      }
    }
    assert.equal(legs.size, 2 * LOOPS * PER_LOOP, 'every acknowledged transfer is stored');
    for (const [id, l] of legs) {
      assert.equal(l.length, 2, `transfer ${id} has both legs`);
      assert.deepEqual(l.map((x) => x.type).sort(), ['Deposited', 'Withdrawn'], `transfer ${id}`);
      assert.equal(l[0]!.amount, l[1]!.amount);
      assert.notEqual(l[0]!.stream, l[1]!.stream);
    }
    t.diagnostic(`per process transfers/conflicts: ${summaries.map((s) => `${s.transfers}/${s.conflicts}`).join(', ')}`);
  });
});
