// Two OS processes writing one stream on a real broker: optimistic concurrency across
// processes (takeover on demand), and a writer frozen with SIGSTOP (a zombie) while the other
// takes its partition over. Counts events lost and duplicated: both must be 0.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createEventStore } from '../../../src/index.ts';
import { kafka } from '../../../src/backends/kafka/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { assertNoLossNoDuplicates, startWriter, writerFigures } from '../../support/log-writers.ts';
import { deleteStoreTopics } from './cleanup.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';

const prefixes: string[] = [];
after(async () => {
  await deleteStoreTopics(prefixes, 'processes-test-cleanup');
});

const start = (prefix: string, name: string, startAt: number, stopAt: number) =>
  startWriter({ backend: 'kafka', options: { brokers: KAFKA_BROKERS, prefix, partitions: 2 } }, name, startAt, stopAt);

async function storedStream(prefix: string): Promise<{ version: number; id: string }[]> {
  const store = createEventStore({ driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 2 }), events: [Deposited, Withdrawn] });
  const events: { version: number; id: string }[] = [];
  for await (const e of store.readStream('account-shared')) events.push({ version: e.version, id: e.id });
  await store.close();
  return events;
}

describe('kafka: two processes', () => {
  it('race on one stream: every acknowledged append is stored once, versions have no gaps', { timeout: 60_000 }, async (t) => {
    const prefix = uniqueName('kproc-race');
    prefixes.push(prefix);
    await storedStream(prefix); // create the topics once
    const startAt = Date.now() + 1500;
    // 8 s (a writer with no ack yet may go on for its first): a routed append's expected version
    // is older by a round trip than the owner's own, so the owner wins most races; one CI run
    // on a loaded machine saw the other writer win none in 8 s.
    const runs = [start(prefix, 'a', startAt, startAt + 8000), start(prefix, 'b', startAt, startAt + 8000)];
    const results = await Promise.all(runs.map((r) => r.done));
    const acks = results.flatMap((r) => r.acks);
    const stored = await storedStream(prefix);
    assertNoLossNoDuplicates(stored, acks);
    assert.ok(
      results.every((r) => r.acks.length > 0),
      `both writers made progress (acks/conflicts/gave-up-fenced): ${writerFigures(results)}`,
    );
    t.diagnostic(`stored ${stored.length}, lost 0, duplicated 0; per writer acks/conflicts/gave-up-fenced: ${writerFigures(results)}`);
  });

  it('a writer frozen mid-run (SIGSTOP) is fenced by the other and loses nothing when it wakes', { timeout: 60_000 }, async (t) => {
    const prefix = uniqueName('kproc-zombie');
    prefixes.push(prefix);
    await storedStream(prefix);
    const startAt = Date.now() + 1500;
    const zombie = start(prefix, 'zombie', startAt, startAt + 5000);
    const other = start(prefix, 'other', startAt + 1000, startAt + 5000);
    await new Promise((r) => setTimeout(r, startAt + 700 - Date.now()));
    zombie.child.kill('SIGSTOP'); // frozen, most likely inside a transaction
    await new Promise((r) => setTimeout(r, 2000)); // the other writer claims and appends meanwhile
    zombie.child.kill('SIGCONT');
    const [z, o] = await Promise.all([zombie.done, other.done]);
    const stored = await storedStream(prefix);
    assertNoLossNoDuplicates(stored, [...z.acks, ...o.acks]);
    assert.ok(o.acks.length > 0 && z.acks.length > 0, `both made progress: zombie ${z.acks.length}, other ${o.acks.length}`);
    t.diagnostic(
      `stored ${stored.length}, lost 0, duplicated 0; zombie ${z.acks.length}/${z.summary.conflicts}/${z.summary.fenced}, other ${o.acks.length}/${o.summary.conflicts}/${o.summary.fenced} (acks/conflicts/gave-up-fenced)`,
    );
  });
});
