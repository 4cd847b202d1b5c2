// kafkaProjector on a real broker: exactly-once consume-transform-produce across kill -9 of
// the projector process (outputs counted by a read_committed reader: each exactly once; a
// read_uncommitted reader must see the aborted records, or the kill did not land mid-
// transaction and the test proves nothing), dead letters for undecodable events and failing
// handlers, typed handlers, and clean shutdown.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { Admin, fetchV17, FetchIsolationLevels, IS_CONTROL, Producer } from '@platformatic/kafka';
import { createEventStore, DriverError, EventDecodeError, InvalidArgumentError } from '../../../src/index.ts';
import { kafka, kafkaProjector } from '../../../src/backends/kafka/index.ts';
import { KafkaNames } from '../../../src/backends/kafka/topics.ts';
import { PartitionLog, type LogRecord } from '../../../src/backends/kafka/log.ts';
import { sqlite } from '../../../src/backends/sqlite/index.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';

const topicsToDelete: string[] = [];
after(async () => {
  const admin = new Admin({ clientId: 'projector-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  const existing = new Set(await admin.listTopics());
  const mine = topicsToDelete.filter((t) => existing.has(t));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  await admin.close();
});

function forCleanup(prefix: string, group: string, outputs: string[]): void {
  const names = new KafkaNames(prefix);
  topicsToDelete.push(names.events, names.snapshots, names.index(), names.projectorDeadLetters(group), ...outputs);
}

const worker = new URL('./projector-worker.ts', import.meta.url).pathname;

interface WorkerRun {
  readonly lines: Record<string, unknown>[];
  readonly started: Promise<void>;
  /** The handler has run 150 times: past the first partition slice of the first batch (140 events here). */
  readonly busy: Promise<void>;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(): void;
}

function runWorker(args: string[], env: Record<string, string> = {}): WorkerRun {
  const child = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: Record<string, unknown>[] = [];
  let out = '';
  let stderr = '';
  let onStarted!: () => void;
  const started = new Promise<void>((resolve) => (onStarted = resolve));
  let onBusy!: () => void;
  const busy = new Promise<void>((resolve) => (onBusy = resolve));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      const line = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
      out = out.slice(nl + 1);
      lines.push(line);
      if (line.started) onStarted();
      if (typeof line.handled === 'number' && line.handled >= 150) onBusy();
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { lines, started, busy, exit, kill: () => child.kill('SIGKILL') };
}

/** Every record of a topic a read_committed reader gets (eventfold's filter, the Java client's algorithm). */
async function readCommitted(topic: string, partitions: number): Promise<LogRecord[]> {
  const admin = new Admin({ clientId: 'projector-test-committed', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const log = new PartitionLog(admin);
    await log.describe(topic, partitions);
    const out: LogRecord[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      for (let at = 0n; ; ) {
        const page = await log.fetch(topic, partition, at);
        out.push(...page.records);
        if (page.next <= at) break;
        at = page.next;
        if (!page.fromCache && at >= page.lastStable) break;
      }
    }
    return out;
  } finally {
    await admin.close();
  }
}

/** Data records of a topic as a read_uncommitted reader sees them: aborted ones included. */
async function countUncommitted(topic: string): Promise<number> {
  const admin = new Admin({ clientId: 'projector-test-uncommitted', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
    const t = metadata.topics.get(topic)!;
    let count = 0;
    for (let partition = 0; partition < t.partitionsCount; partition++) {
      const connection = await admin.connections.get(metadata.brokers.get(t.partitions[partition]!.leader)!);
      for (let at = 0n; ; ) {
        const response = await fetchV17.api.async(
          connection,
          0,
          1,
          4 << 20,
          FetchIsolationLevels.READ_UNCOMMITTED,
          0,
          -1,
          [
            {
              topicId: t.id,
              partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: at, lastFetchedEpoch: -1, partitionMaxBytes: 4 << 20 }],
            },
          ],
          [],
          '',
        );
        const p = response.responses[0]!.partitions[0]!;
        let next = at;
        for (const batch of p.records ?? []) {
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
          if (last >= next) next = last + 1n;
          if ((batch.attributes & IS_CONTROL) !== 0) continue;
          for (const r of batch.records) if (batch.firstOffset + BigInt(r.offsetDelta) >= at) count++;
        }
        if (next <= at || next >= p.highWatermark) break;
        at = next;
      }
    }
    return count;
  } finally {
    await admin.close();
  }
}

function header(record: LogRecord, name: string): string | undefined {
  for (const [k, v] of record.headers) if (k?.toString() === name) return v?.toString();
  return undefined;
}

describe('kafka: projector', () => {
  it('kill -9 mid-transaction, twice: every output exactly once for read_committed readers', { timeout: 60_000 }, async (t) => {
    const prefix = uniqueName('kproj');
    const group = 'totals';
    const output = `${prefix}.totals-out`;
    forCleanup(prefix, group, [output]);
    const store = createEventStore({ driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 4 }), events: [Deposited, Withdrawn] });
    const ids = new Set<string>();
    for (let s = 0; s < 30; s++) {
      const events = Array.from({ length: 10 }, (_, i) => (i % 3 === 2 ? Withdrawn({ amount: i + 1 }) : Deposited({ amount: i + 1 })));
      await store.append(`account-${s}`, events);
      for (const e of events) ids.add(e.id);
    }
    await store.close();
    const args = [KAFKA_BROKERS.join(','), prefix, group, output, 'w1'];

    // 1. Deterministic: the handler SIGKILLs its process with one partition's records sent in the open transaction.
    const first = runWorker(args, { PROJECTOR_KILL: 'second-partition' });
    const firstExit = await first.exit;
    assert.equal(firstExit.signal, 'SIGKILL', `first run died by SIGKILL (stderr: ${firstExit.stderr})`);
    assert.ok(
      first.lines.some((l) => l.killing),
      'first run killed itself inside a batch',
    );
    const abortedAfterFirst = await countUncommitted(output);
    assert.ok(abortedAfterFirst > 0, 'the first run left records of its open transaction in the log');

    // 2. Random: a slow run killed from outside at a random moment once it is busy.
    const second = runWorker(args, { PROJECTOR_DELAY_MS: '4' });
    await Promise.race([second.busy, second.exit]);
    const delay = Math.floor(Math.random() * 250);
    await new Promise((r) => setTimeout(r, delay));
    second.kill();
    const secondExit = await second.exit;
    assert.equal(secondExit.signal, 'SIGKILL', `second run was killed (stderr: ${secondExit.stderr})`);
    const abortedAfterSecond = (await countUncommitted(output)) - abortedAfterFirst;

    // 3. A run to the end; it exits on its own once it has closed the store.
    const third = runWorker(args);
    const thirdExit = await third.exit;
    assert.equal(thirdExit.code, 0, `third run exited cleanly (stderr: ${thirdExit.stderr})`);
    assert.ok(
      third.lines.some((l) => l.caughtUp),
      'third run caught up',
    );

    const committed = await readCommitted(output, 3);
    const seen = new Map<string, number>();
    for (const r of committed) {
      const value = JSON.parse(r.value!.toString()) as { id: string; streamId: string };
      assert.equal(r.key?.toString(), value.streamId, 'key = stream id');
      seen.set(value.id, (seen.get(value.id) ?? 0) + 1);
    }
    const duplicated = [...seen.values()].filter((n) => n > 1).length;
    const lost = [...ids].filter((id) => !seen.has(id)).length;
    const uncommitted = await countUncommitted(output);
    t.diagnostic(
      `events ${ids.size}; read_committed outputs ${committed.length} (distinct ${seen.size}, lost ${lost}, duplicated ${duplicated}); ` +
        `read_uncommitted records ${uncommitted} (aborted ${uncommitted - committed.length}; ${abortedAfterFirst} after the first kill); ` +
        `second run killed ${delay} ms after its 150th handler call, records it left in the log ${abortedAfterSecond} (committed or aborted); third run ${JSON.stringify(third.lines.find((l) => l.caughtUp))}`,
    );
    assert.equal(lost, 0, 'no output lost');
    assert.equal(duplicated, 0, 'no output duplicated');
    assert.equal(committed.length, ids.size, 'exactly one output per event');
    assert.ok(uncommitted > committed.length, 'read_uncommitted sees aborted outputs: the kills landed inside transactions');
  });

  it('dead-letters an undecodable record and a failing handler inside the transaction, and goes on', { timeout: 30_000 }, async (t) => {
    const prefix = uniqueName('kproj-dlq');
    const group = 'dlq';
    const output = `${prefix}.dlq-out`;
    forCleanup(prefix, group, [output]);
    const store = createEventStore({ driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 2 }), events: [Deposited, Withdrawn] });
    try {
      for (let amount = 1; amount <= 5; amount++) await store.append('acct-1', Deposited({ amount }));
      // An event record with a valid envelope and a payload the JSON codec cannot read.
      const raw = new Producer({ clientId: 'projector-test-raw', bootstrapBrokers: KAFKA_BROKERS });
      const badPartition = partitionOf('bad-1', 2);
      const sent = await raw.send({
        messages: [
          {
            topic: new KafkaNames(prefix).events,
            partition: badPartition,
            key: Buffer.from('bad-1'),
            value: Buffer.from('{not json'),
            headers: new Map([
              [Buffer.from('ef-id'), Buffer.from('00000000-0000-4000-8000-000000000001')],
              [Buffer.from('ef-type'), Buffer.from('Deposited')],
              [Buffer.from('ef-schema'), Buffer.from('1')],
              [Buffer.from('ef-codec'), Buffer.from('json')],
              [Buffer.from('ef-meta'), Buffer.from('{}')],
              [Buffer.from('ef-version'), Buffer.from('1')],
              [Buffer.from('ef-time'), Buffer.from(String(Date.now()))],
            ]),
          },
        ],
      });
      await raw.close();
      const badOffset = sent.offsets!.find((o) => o.partition === badPartition)!.offset;
      for (let amount = 6; amount <= 10; amount++) await store.append('acct-1', Deposited({ amount }));
      // Events decode as the store's union: narrowing by `type` types `data`.
      const seenTypes: ('Deposited' | 'Withdrawn')[] = [];
      const projector = kafkaProjector(store, {
        group,
        instance: 'solo',
        outputs: [output],
        createOutputs: { partitions: 1 },
        retries: 1,
        retryDelayMs: 1,
        handle: (event) => {
          seenTypes.push(event.type);
          // @ts-expect-error 'Audited' is not one of this store's event types
          if (event.type === 'Audited') return undefined;
          const amount = event.type === 'Deposited' ? event.data.amount : -event.data.amount;
          if (amount === 7) throw new Error(`boom ${amount}`);
          return [{ topic: output, key: event.streamId, value: String(amount), headers: { 'ef-source': event.id } }];
        },
      });
      await projector.caughtUp();
      assert.equal(projector.deadLettered, 2);
      assert.equal(projector.processed, 11);
      assert.deepEqual(new Set(seenTypes), new Set(['Deposited']));
      await store.close(); // closes the projector too
      await projector.done;

      const outputs = await readCommitted(output, 1);
      assert.deepEqual(
        outputs.map((r) => Number(r.value!.toString())),
        [1, 2, 3, 4, 5, 6, 8, 9, 10],
        'later events still projected, in order',
      );
      const letters = await readCommitted(projector.deadLetterTopic, 2);
      assert.equal(letters.length, 2);
      const decode = letters.find((r) => header(r, 'ef-dlq-stage') === 'decode')!;
      assert.ok(decode, 'the undecodable record is a dead letter');
      assert.equal(header(decode, 'ef-dlq-code'), new EventDecodeError({ streamId: 'x', version: 1, type: 'x' }, '').code);
      assert.match(header(decode, 'ef-dlq-error')!, /bad-1/);
      assert.equal(header(decode, 'ef-dlq-partition'), String(badPartition));
      assert.equal(header(decode, 'ef-dlq-offset'), String(badOffset));
      assert.equal(decode.value!.toString(), '{not json', 'original payload kept');
      assert.equal(header(decode, 'ef-id'), '00000000-0000-4000-8000-000000000001', 'original headers kept');
      const handled = letters.find((r) => header(r, 'ef-dlq-stage') === 'handle')!;
      assert.equal(header(handled, 'ef-dlq-error'), 'boom 7');
      assert.equal(header(handled, 'ef-dlq-attempts'), '2');
      assert.equal(handled.key!.toString(), 'acct-1');
      t.diagnostic(
        `dead letters: ${letters.map((r) => `${header(r, 'ef-dlq-stage')}@${header(r, 'ef-dlq-partition')}:${header(r, 'ef-dlq-offset')} ${header(r, 'ef-dlq-error')}`).join(' | ')}`,
      );
    } finally {
      await store.close(); // idempotent
    }
  });

  it('a second live instance with the same instance name fences the first, which stops with a DriverError', {
    timeout: 30_000,
  }, async () => {
    const prefix = uniqueName('kproj-fence');
    const group = 'fence';
    const output = `${prefix}.fence-out`;
    forCleanup(prefix, group, [output]);
    const open = () =>
      createEventStore({ driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 1 }), events: [Deposited, Withdrawn] });
    const [one, two] = [open(), open()];
    try {
      await one.append('acct-1', Deposited({ amount: 1 }));
      const handle = (event: { streamId: string }) => ({ topic: output, key: event.streamId, value: 'x' });
      const first = kafkaProjector(one, { group, instance: 'same', createOutputs: { partitions: 1 }, handle, onError: () => undefined });
      await first.caughtUp();
      const second = kafkaProjector(two, { group, instance: 'same', createOutputs: { partitions: 1 }, handle, onError: () => undefined });
      await second.started;
      await one.append('acct-1', Deposited({ amount: 2 }));
      await assert.rejects(
        first.done,
        (error: unknown) => error instanceof DriverError && /another instance took over/.test(error.message),
      );
      await second.caughtUp();
      assert.equal(first.processed + second.processed, 2);
      assert.equal((await readCommitted(output, 1)).length, 2, 'each event projected once');
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('projects every events topic of a store with a topic per category, each event once', { timeout: 30_000 }, async () => {
    const prefix = uniqueName('kproj-cat');
    const group = 'cats';
    const output = `${prefix}.cats-out`;
    forCleanup(prefix, group, [output, new KafkaNames(prefix).categoryEvents('acct')]);
    const store = createEventStore({
      driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 2, categories: ['acct'] }),
      events: [Deposited, Withdrawn],
    });
    try {
      for (let i = 0; i < 10; i++) {
        await store.append(`acct-${i}`, Deposited({ amount: i + 1 }));
        await store.append(`other-${i}`, Withdrawn({ amount: i + 1 }));
      }
      const projector = kafkaProjector(store, {
        group,
        instance: 'solo',
        createOutputs: { partitions: 1 },
        handle: (event) => ({ topic: output, key: event.streamId, value: `${event.type}:${event.position.partition}` }),
      });
      await projector.caughtUp();
      await projector.stop();
      const outputs = (await readCommitted(output, 1)).map((r) => `${r.key?.toString()}=${r.value?.toString()}`).sort();
      const expected = [];
      for (let i = 0; i < 10; i++) {
        expected.push(`acct-${i}=Deposited:${store.partitionOf(`acct-${i}`)}`, `other-${i}=Withdrawn:${store.partitionOf(`other-${i}`)}`);
      }
      assert.deepEqual(outputs, expected.sort());
      assert.ok(
        expected.some((e) => /Deposited:[23]$/.test(e)),
        'category streams live in the category topic (store partitions 2-3)',
      );
    } finally {
      await store.close();
    }
  });

  it('refuses a store on another backend, and stops on a missing output topic with a clear error', { timeout: 30_000 }, async () => {
    const local = createEventStore({ driver: sqlite(), events: [Deposited, Withdrawn] });
    assert.throws(() => kafkaProjector(local, { group: 'g', handle: () => undefined }), InvalidArgumentError);
    await local.close();

    const prefix = uniqueName('kproj-missing');
    const group = 'missing';
    forCleanup(prefix, group, []);
    const store = createEventStore({ driver: kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 1 }), events: [Deposited, Withdrawn] });
    await store.append('acct-1', Deposited({ amount: 1 }));
    try {
      const projector = kafkaProjector(store, { group, instance: 'solo', handle: () => ({ topic: `${prefix}.nowhere`, value: 'x' }) });
      await assert.rejects(
        projector.done,
        (error: unknown) => error instanceof InvalidArgumentError && /nowhere.*does not exist/.test(error.message),
      );
      // Nothing was committed: a later run that may create the topic starts from the same event.
      const again = kafkaProjector(store, {
        group,
        instance: 'solo',
        createOutputs: { partitions: 1 },
        handle: () => ({ topic: `${prefix}.nowhere`, value: 'x' }),
      });
      topicsToDelete.push(`${prefix}.nowhere`);
      await again.caughtUp();
      assert.equal(again.processed, 1);
      await again.stop();
      assert.equal((await readCommitted(`${prefix}.nowhere`, 1)).length, 1);
    } finally {
      await store.close();
    }
  });
});
