// Two OS processes writing one stream on the real Pulsar standalone: optimistic concurrency
// across processes (takeover on demand), and a writer frozen with SIGSTOP (a zombie) while the
// other takes its partition over. Counts events lost and duplicated (both must be 0), and reads
// the raw log too: a zombie's stale commit landing after the new owner's first write would show
// there as a version out of line (readers' indexes skip such a record, so readStream alone
// would not show it).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createEventStore, type StoredEvent } from '../../../src/index.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { assertNoLossNoDuplicates, startWriter, writerFigures } from '../../support/log-writers.ts';
import { dropNamespace } from './support.ts';

const namespace = uniqueName('processes');
after(() => dropNamespace('public', namespace));

const options = (prefix: string) => ({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 2 });
const driver = (prefix: string) => pulsar(options(prefix));
const start = (prefix: string, name: string, startAt: number, stopAt: number) =>
  startWriter({ backend: 'pulsar', options: options(prefix) }, name, startAt, stopAt);

async function storedStream(prefix: string): Promise<{ version: number; id: string }[]> {
  const store = createEventStore({ driver: driver(prefix), events: [Deposited, Withdrawn] });
  const events: { version: number; id: string }[] = [];
  for await (const e of store.readStream('account-shared')) events.push({ version: e.version, id: e.id });
  await store.close();
  return events;
}

/** Every event of the stream as the log holds it, in log order, with no reader-side filtering. */
async function rawLog(prefix: string): Promise<StoredEvent[]> {
  const d = driver(prefix);
  await d.open();
  try {
    const out: StoredEvent[] = [];
    for (let p = 0; p < d.partitions; p++)
      out.push(...(await d.readPartition(p, { after: undefined, limit: 1_000_000, streamId: 'account-shared' })));
    return out;
  } finally {
    await d.close();
  }
}

function assertRawLogInLine(raw: readonly StoredEvent[]): void {
  assert.deepEqual(
    raw.map((e) => e.version),
    raw.map((_, i) => i + 1),
    'the raw log holds versions 1..n in log order: no stale commit landed anywhere',
  );
}

describe('pulsar: two processes', () => {
  it('race on one stream: every acknowledged append is stored once, versions have no gaps', { timeout: 90_000 }, async (t) => {
    const prefix = uniqueName('race');
    await storedStream(prefix); // create the topics once
    const startAt = Date.now() + 2000;
    const runs = [start(prefix, 'a', startAt, startAt + 8000), start(prefix, 'b', startAt, startAt + 8000)];
    const results = await Promise.all(runs.map((r) => r.done));
    const acks = results.flatMap((r) => r.acks);
    const stored = await storedStream(prefix);
    assertNoLossNoDuplicates(stored, acks);
    assertRawLogInLine(await rawLog(prefix));
    assert.ok(
      results.every((r) => r.acks.length > 0),
      `both writers made progress (acks/conflicts/gave-up-fenced): ${writerFigures(results)}`,
    );
    t.diagnostic(`stored ${stored.length}, lost 0, duplicated 0; per writer acks/conflicts/gave-up-fenced: ${writerFigures(results)}`);
  });

  it('a writer frozen mid-run (SIGSTOP) is fenced by the other: nothing of it lands after the new owner writes, nothing lost', {
    timeout: 90_000,
  }, async (t) => {
    const prefix = uniqueName('zombie');
    await storedStream(prefix);
    const startAt = Date.now() + 2000;
    const zombie = start(prefix, 'zombie', startAt, startAt + 6000);
    const other = start(prefix, 'other', startAt + 1000, startAt + 6000);
    await new Promise((r) => setTimeout(r, startAt + 700 - Date.now()));
    zombie.child.kill('SIGSTOP'); // frozen, most likely with a commit in flight
    const stoppedAt = Date.now();
    await new Promise((r) => setTimeout(r, 2500)); // the other writer claims and appends meanwhile
    const resumedAt = Date.now();
    zombie.child.kill('SIGCONT');
    const [z, o] = await Promise.all([zombie.done, other.done]);
    const stored = await storedStream(prefix);
    assertNoLossNoDuplicates(stored, [...z.acks, ...o.acks]);
    const raw = await rawLog(prefix);
    assertRawLogInLine(raw);
    const zombieIds = new Set(z.acks.map((a) => a.id));
    const firstOther = raw.findIndex((e) => !zombieIds.has(e.id));
    assert.ok(firstOther >= 0, 'the other writer appended');
    // What the zombie stored after the new owner's first write, it appended after it woke up
    // (its ack came after SIGCONT), at versions past everything before it: a fresh takeover,
    // never a commit from before the freeze.
    const zombieAcks = new Map(z.acks.map((a) => [a.id, a]));
    const acksBeforeFreeze = z.acks.filter((a) => a.at < stoppedAt).length;
    for (const e of raw.slice(firstOther)) {
      const ack = zombieAcks.get(e.id);
      if (ack)
        assert.ok(ack.at >= resumedAt, `zombie event v${e.version} after the new owner's first write was acknowledged after SIGCONT`);
    }
    assert.ok(o.acks.length > 0 && z.acks.length > 0, `both made progress: zombie ${z.acks.length}, other ${o.acks.length}`);
    t.diagnostic(
      `stored ${stored.length}, lost 0, duplicated 0; zombie ${z.acks.length} (${acksBeforeFreeze} before the freeze)/${z.summary.conflicts}/${z.summary.fenced}, other ${o.acks.length}/${o.summary.conflicts}/${o.summary.fenced} (acks/conflicts/gave-up-fenced); new owner's first write at log index ${firstOther}`,
    );
  });
});
