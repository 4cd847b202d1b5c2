// Two OS processes in one consumer group on the real Pulsar standalone: each is the active
// Failover consumer of one events partition; one is SIGKILLed mid-run and the other takes its
// partition over. Nothing is lost; what the killed one had in hand and not acknowledged is
// delivered again (at least once), and the count of such duplicates is reported.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { createEventStore } from '../../../src/index.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { appendMany, groupEvents, until } from '../../conformance/consumer-groups.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { createReadModel } from '../../../src/testing/conformance/read-model.ts';
import { subscriptions, unacknowledgedEvents } from './group-stats.ts';
import { dropNamespace } from './support.ts';

const namespace = uniqueName('group-procs');
const dir = mkdtempSync(join(tmpdir(), 'eventfold-pulsar-groups-'));
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await dropNamespace('public', namespace);
});

const count = (db: DatabaseSync, sql: string, ...params: string[]): number => (db.prepare(sql).get(...params) as { n: number }).n;

describe('pulsar consumer groups: two processes', () => {
  it('share the partitions; a killed one hands its partition to the other, nothing is lost', { timeout: 120_000 }, async (t) => {
    const prefix = uniqueName('share');
    const group = 'projection';
    const store = createEventStore({
      driver: pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 2 }),
      events: groupEvents,
    });
    t.after(() => store.close());
    const file = join(dir, `${prefix}.db`);
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000');
    createReadModel(db);
    db.exec('CREATE TABLE partitions (event_id TEXT NOT NULL, consumer TEXT NOT NULL, partition INTEGER NOT NULL)');
    t.after(() => db.close());

    const worker = new URL('./group-member-worker.ts', import.meta.url).pathname;
    const start = (name: string): ChildProcess => {
      const child = spawn(process.execPath, [worker, namespace, prefix, group, name, file], { stdio: 'inherit' });
      children.push(child);
      return child;
    };
    const a = start('a');
    const b = start('b');
    // Both in the group, one active consumer each on the events partitions.
    await until(
      async () => {
        const subs = await subscriptions(store, group).catch(() => []);
        const events = subs.slice(0, 2);
        return (
          events.length === 2 &&
          events.every((s) => s.consumers.length === 2) &&
          new Set(events.map((s) => s.activeConsumerName)).size === 2
        );
      },
      'both workers active on one partition each',
      30_000,
    );

    const total = 300;
    const ids = await appendMany(store, total);
    const by = (consumer: string): number => count(db, 'SELECT count(*) AS n FROM attempts WHERE consumer = ?', consumer);
    await until(() => by('a') >= 20 && by('b') >= 20, 'both workers to handle events');
    a.kill('SIGKILL');
    await new Promise((resolve) => a.once('exit', resolve));
    const aAtKill = by('a');
    const aPartition = (db.prepare("SELECT partition FROM partitions WHERE consumer = 'a' LIMIT 1").get() as { partition: number })
      .partition;

    await until(() => count(db, 'SELECT count(*) AS n FROM applied') === total, `the read model to hold all ${total} events`, 60_000);
    await until(async () => (await unacknowledgedEvents(store, group)) === 0, 'everything acknowledged', 30_000);
    b.kill('SIGKILL');

    const applied = (db.prepare('SELECT event_id FROM applied ORDER BY event_id').all() as { event_id: string }[]).map((r) => r.event_id);
    assert.deepEqual(applied, [...ids].sort(), 'every event applied, once');
    assert.ok(aAtKill < total, `a was killed mid-run (${aAtKill} handled)`);
    const takenOver = count(db, "SELECT count(*) AS n FROM partitions WHERE consumer = 'b' AND partition = ?", String(aPartition));
    assert.ok(takenOver > 0, `b handled events of a's partition ${aPartition} after the kill (${takenOver})`);
    assert.equal(
      count(db, "SELECT count(*) AS n FROM partitions WHERE consumer = 'a' AND partition != ?", String(aPartition)),
      0,
      'before the kill, a handled only its own partition',
    );
    const duplicates = count(db, 'SELECT count(*) AS n FROM (SELECT event_id FROM attempts GROUP BY event_id HAVING count(*) > 1)');
    // At most the batch a had in hand (batchSize 10): delivered, maybe handled, not acknowledged.
    assert.ok(duplicates <= 10, `duplicates ${duplicates} within the killed worker's batch`);
    t.diagnostic(
      `a handled ${aAtKill} before SIGKILL, b took over ${takenOver} of a's partition; duplicates (delivered twice): ${duplicates}`,
    );
  });
});
