// Several writer processes of one store on a real broker, as N replicas of a service: the writer
// group shares the partitions out and appends to another process's partition are routed to it
// (core/log/append-router.ts). Callers only ever see success or a version conflict; nothing
// acknowledged is lost or stored twice, and a SIGKILLed writer's partitions move to the others.
// Runs unchanged against every backend with routing (test/backends/<backend>/routing.test.ts).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import type { PartitionOwnerDriver } from '../../src/core/driver.ts';
import { partitionOf } from '../../src/core/partition.ts';
import { createEventStore, type EventStoreDriver } from '../../src/index.ts';
import { Deposited, Withdrawn } from './fixtures.ts';
import type { WorkerDriver } from './routing-worker.ts';

export interface RoutingProcessesTarget {
  readonly name: string;
  readonly partitions: number;
  /** A worker's driver, as JSON, for a store `prefix`; `kill` for the SIGKILL test (e.g. a short session timeout). */
  readonly worker: (prefix: string, kill: boolean) => WorkerDriver;
  /** The same store in this process, to read what was stored. */
  readonly driver: (prefix: string) => EventStoreDriver & Pick<PartitionOwnerDriver, 'partitionOf'>;
  /** How long after a SIGKILL the victim's partitions may take to be served again. */
  readonly recoveryMs: number;
  /** Names of the stores the tests made, for the backend's cleanup. */
  readonly made?: (prefix: string) => void;
  readonly uniqueName: (label: string) => string;
}

const worker = new URL('./routing-worker.ts', import.meta.url).pathname;
/** A worker still running this long after its stop time is hung: it is killed and its run fails (a hung child would keep the test file from ever ending). */
const HUNG_AFTER_STOP_MS = 60_000;
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

interface Ack {
  readonly stream: string;
  readonly version: number;
  readonly id: string;
}
interface Summary {
  readonly ok: number;
  readonly conflicts: number;
  readonly fenced: number;
  readonly failed: number;
  readonly errors: string[];
}
interface Run {
  readonly child: ChildProcess;
  readonly acks: { ack: Ack[]; at: number }[];
  readonly ready: Promise<void>;
  readonly done: Promise<Summary | undefined>;
}

function start(config: Record<string, unknown>): Run {
  const child = spawn(process.execPath, [worker, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let hung = false;
  const watchdog = setTimeout(
    () => {
      hung = true;
      child.kill('SIGKILL');
    },
    Number(config.stopAt) - Date.now() + HUNG_AFTER_STOP_MS,
  );
  const acks: Run['acks'] = [];
  let summary: Summary | undefined;
  let buffered = '';
  let err = '';
  let ready: () => void = () => undefined;
  const readyP = new Promise<void>((resolve) => {
    ready = resolve;
  });
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const value = JSON.parse(line) as { ready?: true; done?: true; ack?: Ack[]; at?: number } & Summary;
      if (value.ready) ready();
      else if (value.done) summary = value;
      else acks.push({ ack: value.ack!, at: value.at! });
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<Summary | undefined>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      running.delete(child);
      if (hung) return reject(new Error(`worker hung: still running ${HUNG_AFTER_STOP_MS} ms after its stop time, killed; stderr: ${err}`));
      if (signal === 'SIGKILL') return resolve(undefined);
      if (code !== 0) return reject(new Error(`worker exited ${code}: ${err}`));
      resolve(summary);
    });
  });
  return { child, acks, ready: readyP, done };
}

type Stored = { stream: string; version: number; id: string; type: string }[];

async function storedEvents(target: RoutingProcessesTarget, prefix: string): Promise<Stored> {
  const store = createEventStore({ driver: target.driver(prefix), events: [Deposited, Withdrawn] });
  const out: Stored = [];
  for await (const e of store.readAll()) out.push({ stream: e.streamId, version: e.version, id: e.id, type: e.type });
  await store.close();
  return out;
}

/** Every acknowledged append is stored once, at the acknowledged version; no event is stored twice; versions have no gaps. */
function assertNothingLostOrDoubled(stored: Stored, acks: readonly Ack[]): void {
  assert.equal(new Set(stored.map((e) => e.id)).size, stored.length, 'no event stored twice');
  const byId = new Map(stored.map((e) => [e.id, e]));
  for (const a of acks) {
    const s = byId.get(a.id);
    assert.ok(s, `acknowledged event ${a.id} of ${a.stream} is stored (nothing lost)`);
    assert.equal(s.stream, a.stream);
    assert.equal(s.version, a.version, `acknowledged at version ${a.version} of ${a.stream}`);
  }
  const versions = new Map<string, number[]>();
  for (const e of stored) versions.set(e.stream, [...(versions.get(e.stream) ?? []), e.version]);
  for (const [stream, list] of versions) {
    assert.deepEqual(
      list,
      list.map((_, i) => i + 1),
      `versions of ${stream} are 1..n in order`,
    );
  }
}

export function runRoutingProcessesSuite(target: RoutingProcessesTarget): void {
  const P = target.partitions;
  const newPrefix = (label: string): string => {
    const prefix = target.uniqueName(label);
    target.made?.(prefix);
    return prefix;
  };

  describe(`${target.name}: writer processes share the partitions (routed appends)`, () => {
    it(`4 processes doing transfers (appendMany) over ${P} partitions: no fenced error reaches a caller, money is conserved`, {
      timeout: 150_000,
    }, async (t) => {
      const prefix = newPrefix('route-transfers');
      await storedEvents(target, prefix);
      const startAt = Date.now() + 8000;
      const stopAt = startAt + 10_000;
      const runs = Array.from({ length: 4 }, () =>
        start({ driver: target.worker(prefix, false), mode: 'transfers', accounts: 20, inFlight: 4, startAt, stopAt }),
      );
      const summaries = await Promise.all(runs.map((r) => r.done));
      for (const s of summaries) {
        assert.ok(s);
        assert.deepEqual(s.errors, [], 'no error other than a version conflict');
        assert.equal(s.fenced, 0, 'no PartitionFencedError reaches a caller');
        assert.ok(s.ok > 0, 'every process completes transfers');
      }
      const stored = await storedEvents(target, prefix);
      const acks = runs.flatMap((r) => r.acks.flatMap((a) => a.ack));
      assertNothingLostOrDoubled(stored, acks);
      const accounts = stored.filter((e) => /^account-\d+$/.test(e.stream));
      const debits = accounts.filter((e) => e.type === 'Withdrawn').length;
      const credits = accounts.filter((e) => e.type === 'Deposited').length;
      assert.equal(debits, credits, 'each transfer stored both halves or neither');
      assert.equal(debits, acks.length / 2, 'every stored transfer was acknowledged once');
      t.diagnostic(
        `transfers ${debits} in 10 s by 4 processes × 4 in flight; per process ok/conflicts: ${summaries.map((s) => `${s!.ok}/${s!.conflicts}`).join(', ')}`,
      );
    });

    it('a SIGKILLed writer: its partitions move to the others, nothing acknowledged is lost', { timeout: 150_000 }, async (t) => {
      const prefix = newPrefix('route-kill');
      await storedEvents(target, prefix);
      const startAt = Date.now() + 8000;
      const stopAt = startAt + 16_000;
      const runs = Array.from({ length: 3 }, () =>
        start({ driver: target.worker(prefix, true), mode: 'appends', accounts: 40, inFlight: 4, startAt, stopAt }),
      );
      await Promise.all(runs.map((r) => r.ready));
      await new Promise((r) => setTimeout(r, startAt + 4000 - Date.now()));
      const victim = runs[0]!;
      victim.child.kill('SIGKILL');
      const killedAt = Date.now();
      const summaries = await Promise.all(runs.map((r) => r.done));
      for (const s of summaries.slice(1)) {
        assert.ok(s);
        assert.deepEqual(s.errors, [], 'survivors see no error');
        assert.equal(s.fenced, 0, 'no PartitionFencedError reaches a caller');
      }
      const stored = await storedEvents(target, prefix);
      const acks = runs.flatMap((r) => r.acks.flatMap((a) => a.ack));
      assertNothingLostOrDoubled(stored, acks);
      // Per partition: the first append acknowledged to a survivor after the kill that was still
      // waiting on it (its owner may have been the victim): the recovery time is the longest.
      const driver = target.driver(prefix);
      const home = (stream: string): number => driver.partitionOf?.(stream) ?? partitionOf(stream, P);
      const firstAfter = new Map<number, number>();
      for (const run of runs.slice(1)) {
        for (const a of run.acks) {
          if (a.at < killedAt) continue;
          const p = home(a.ack[0]!.stream);
          firstAfter.set(p, Math.min(firstAfter.get(p) ?? Number.POSITIVE_INFINITY, a.at));
        }
      }
      assert.equal(firstAfter.size, P, 'every partition takes appends again after the kill');
      const recovery = Math.max(...[...firstAfter.values()].map((at) => at - killedAt));
      assert.ok(recovery <= target.recoveryMs, `every partition served again within ${target.recoveryMs} ms (took ${recovery} ms)`);
      t.diagnostic(`recovery after SIGKILL: ${recovery} ms (bound ${target.recoveryMs} ms); stored ${stored.length}, lost 0, duplicated 0`);
    });
  });
}
