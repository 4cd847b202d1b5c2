// Index checkpoints on the real Pulsar standalone: a writer checkpoints the core's index of its
// partition into `<prefix>-index`; a cold process reads them back from the END of that topic in
// a few bounded windows and reads only the partition's tail after them (counted with
// `messagesReceived`), with the same results as a full scan. Garbage falls back to the scan, a
// torn checkpoint is skipped, and a lease that was taken over cannot write one.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PulsarClient } from '../../../src/backends/pulsar/client/client.ts';
import type { Message } from '../../../src/backends/pulsar/client/consumer.ts';
import { compareMessageIds } from '../../../src/backends/pulsar/client/message-id.ts';
import { pulsar, type PulsarDriver } from '../../../src/backends/pulsar/index.ts';
import {
  assemble,
  bytesOf,
  CHUNK_BYTES,
  checkpointChunks,
  IP,
  isRef,
  latest,
  parseFullRef,
  refOf,
} from '../../../src/backends/pulsar/index-checkpoints.ts';
import { PulsarNames } from '../../../src/backends/pulsar/records.ts';
import { decodeIndex, encodeIndex } from '../../../src/core/log/index-checkpoint.ts';
import { createEventStore, PartitionFencedError } from '../../../src/index.ts';
import { accountEvents, Deposited } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { admin, dropNamespace } from './support.ts';

const namespace = uniqueName('icp');
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  await dropNamespace('public', namespace);
});

const STREAMS = 7;
/** Byte equality with a short message (assert's diff of two MiB-sized buffers takes minutes). */
function sameBytes(actual: Uint8Array | undefined, expected: Uint8Array, message: string): void {
  const equal = actual !== undefined && Buffer.compare(Buffer.from(actual), Buffer.from(expected)) === 0;
  assert.ok(equal, `${message}: got ${actual === undefined ? 'nothing' : `${actual.byteLength} bytes`}, expected ${expected.byteLength}`);
}
const names = (prefix: string) => new PulsarNames('public', namespace, prefix);

function driverOf(prefix: string, scan = false): PulsarDriver {
  const driver = pulsar({
    serviceUrl: PULSAR_SERVICE_URL,
    adminUrl: PULSAR_URL,
    namespace,
    prefix,
    partitions: 1,
    indexCheckpointEvents: 10,
  });
  // The same driver without index checkpoints: what a cold start costs when it scans.
  if (scan) Object.defineProperty(driver, 'readIndexCheckpoints', { value: undefined });
  return driver;
}

function open(prefix: string, scan = false) {
  const driver = driverOf(prefix, scan);
  const store = createEventStore({ driver, events: accountEvents });
  closers.push(() => store.close());
  return { driver, store };
}

/** `n` appends of one event each, over STREAMS streams (amount = the append's number). */
async function fill(prefix: string, n: number): Promise<void> {
  const { store } = open(prefix);
  for (let i = 0; i < n; i++) await store.append(`account-${i % STREAMS}`, Deposited({ amount: i + 1 }));
  await store.close(); // waits for the checkpoint being written
}

/** Every stream's events as a cold store reads them: version, amount, id. */
async function contents(store: ReturnType<typeof open>['store']): Promise<string[]> {
  const out: string[] = [];
  for (let s = 0; s < STREAMS; s++) {
    for await (const e of store.readStream(`account-${s}`))
      out.push(`${e.streamId}@${e.version}=${(e.data as { amount: number }).amount}/${e.id}`);
  }
  return out;
}

async function readCheckpoints(prefix: string): Promise<{ full?: Uint8Array; delta?: Uint8Array; received: number }> {
  const driver = driverOf(prefix);
  await driver.open();
  try {
    const read = await driver.readIndexCheckpoints(0);
    return { ...(read.full ? { full: read.full } : {}), ...(read.delta ? { delta: read.delta } : {}), received: driver.messagesReceived };
  } finally {
    await driver.close();
  }
}

/** Sends raw messages to the index partition (the store is closed: no exclusive producer holds it). */
async function sendRaw(prefix: string, chunks: ReturnType<typeof checkpointChunks>): Promise<void> {
  const client = new PulsarClient({ serviceUrl: PULSAR_SERVICE_URL });
  try {
    const producer = await client.createProducer({ topic: names(prefix).indexPartition(0) });
    for (const chunk of chunks) await producer.send(chunk.payload, { properties: chunk.properties });
    await producer.close();
  } finally {
    await client.close();
  }
}

/** Every message of the index partition (a test's topics are small). */
async function rawMessages(prefix: string): Promise<Message[]> {
  const client = new PulsarClient({ serviceUrl: PULSAR_SERVICE_URL });
  try {
    const topic = names(prefix).indexPartition(0);
    const reader = await client.subscribe({ topic, subscription: 'raw', durable: false });
    const last = await reader.getLastMessageId();
    const out: Message[] = [];
    while (out.length === 0 || compareMessageIds({ ...out.at(-1)!.messageId, batchIndex: -1 }, { ...last, batchIndex: -1 }) < 0) {
      out.push(await reader.receive(30_000));
    }
    await reader.close();
    return out;
  } finally {
    await client.close();
  }
}

describe('pulsar index checkpoints', { timeout: 600_000 }, () => {
  it('a cold store restores the last full checkpoint and delta, reads a bounded tail, and equals a scan', async () => {
    const prefix = uniqueName('cold');
    // Checkpoints every 10 events: the last full one at 380, then deltas at 390 … 470 (nine, one
    // entry each): the first window back (8 entries) holds only deltas, and the last one names
    // the full checkpoint, read at once.
    await fill(prefix, 475);
    const read = await readCheckpoints(prefix);
    assert.ok(read.full && read.delta, 'a full checkpoint and a delta');
    assert.equal(decodeIndex(read.full)?.through !== undefined, true, 'the full checkpoint decodes');
    assert.ok(read.received <= 9, `reading the checkpoints received ${read.received} messages (8 of the last window + the named full one)`);

    // What a cold process receives for its first append and its first read of one stream.
    const cold = open(prefix);
    const next = await cold.store.append('account-3', Deposited({ amount: 1 }), { expectedVersion: 68 });
    assert.equal(next.nextExpectedVersion, 69, 'the cold writer checks the version against the restored index');
    const appendReceived = cold.driver.messagesReceived;
    const events = [];
    for await (const e of cold.store.readStream('account-3')) events.push(e.version);
    assert.deepEqual(
      events,
      Array.from({ length: 69 }, (_, i) => i + 1),
    );
    const readReceived = cold.driver.messagesReceived - appendReceived;
    const scan = open(prefix, true);
    const scanEvents = [];
    for await (const e of scan.store.readStream('account-3')) scanEvents.push(e.version);
    const scanReceived = scan.driver.messagesReceived;
    console.log(
      `cold start: first append ${appendReceived} messages received, then readStream of 69 events ${readReceived}; a scan: ${scanReceived}`,
    );
    assert.deepEqual(scanEvents, events);
    assert.ok(scanReceived >= 476, `the scan received ${scanReceived} messages`);
    assert.ok(appendReceived <= 30, `the cold append received ${appendReceived} messages, not ${scanReceived}`);
    // Point reads of the stream's entries (not in the tail the append read): about two messages each.
    assert.ok(readReceived <= 3 * 69, `the cold readStream received ${readReceived} messages`);
    await assert.rejects(cold.store.append('account-3', Deposited({ amount: 1 }), { expectedVersion: 68 }));

    // Everything a restored index reads equals what a scan reads.
    assert.deepEqual(await contents(open(prefix).store), await contents(scan.store));
  });

  it('a garbage checkpoint is not used: the cold store scans and is still right', async () => {
    const prefix = uniqueName('garbage');
    await fill(prefix, 30);
    await sendRaw(prefix, checkpointChunks(new TextEncoder().encode('not an index at all'), 'full'));
    const read = await readCheckpoints(prefix);
    assert.equal(read.full && decodeIndex(read.full), undefined, 'the last full checkpoint is the garbage');
    const cold = open(prefix);
    const coldContents = await contents(cold.store);
    const scan = open(prefix, true);
    assert.deepEqual(coldContents, await contents(scan.store));
    assert.equal(coldContents.length, 30);
    assert.ok(cold.driver.messagesReceived >= 30, `it scanned (${cold.driver.messagesReceived} messages received)`);
    console.log(`garbage: the cold store received ${cold.driver.messagesReceived} messages (a scan)`);
  });

  it('a torn checkpoint (chunks missing) is skipped: the one before it is used', async () => {
    const prefix = uniqueName('torn');
    await fill(prefix, 35);
    const before = await readCheckpoints(prefix);
    assert.ok(before.full);
    // A writer that died after two of its three chunks; then a stray last chunk of another.
    const torn = checkpointChunks(new Uint8Array(CHUNK_BYTES * 2 + 1000).fill(7), 'full');
    assert.equal(torn.length, 3);
    await sendRaw(prefix, [...torn.slice(0, 2), checkpointChunks(new Uint8Array(CHUNK_BYTES + 1).fill(8), 'full')[1]!]);
    const after = await readCheckpoints(prefix);
    sameBytes(after.full, before.full!, 'the complete checkpoint before the torn one');
    const cold = open(prefix);
    assert.equal((await cold.store.append('account-0', Deposited({ amount: 1 }), { expectedVersion: 5 })).nextExpectedVersion, 6);
    const received = cold.driver.messagesReceived;
    // The index window (the torn chunks and the checkpoints before them), the tail, the claim: not the 35 commits.
    assert.ok(received < 30, `restored, not scanned (${received} messages received by the first append)`);
    console.log(`torn: the cold first append received ${received} messages`);
    const coldContents = await contents(cold.store);
    const scan = open(prefix, true);
    assert.deepEqual(coldContents, await contents(scan.store));
    assert.equal(coldContents.length, 36);
  });

  it('a lease that was taken over cannot write a checkpoint; chunks of a large one stay under 1 MiB', async () => {
    const prefix = uniqueName('fenced');
    const a = driverOf(prefix);
    const b = driverOf(prefix);
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    await a.open();
    await b.open();
    const index = (through: bigint) => encodeIndex({ through, streams: new Map([['s', [Number(through)]]]), ids: [] });
    const leaseA = await a.claimPartition(0);
    await leaseA.writeIndexCheckpoint(index(1n), 'full');
    const leaseB = await b.claimPartition(0);
    await assert.rejects(leaseA.writeIndexCheckpoint(index(2n), 'full'), PartitionFencedError);
    await assert.rejects(leaseA.writeIndexCheckpoint(index(3n), 'delta'), PartitionFencedError, 'and stays refused');
    const large = new Uint8Array(CHUNK_BYTES * 2 + 12_345).map((_, i) => i % 251);
    await leaseB.writeIndexCheckpoint(large, 'full');
    const read = await readCheckpoints(prefix);
    sameBytes(read.full, large, "the new owner's checkpoint, whole; nothing of the fenced one");
    const stored = await rawMessages(prefix);
    assert.deepEqual(
      stored.map((m) => m.payload.byteLength),
      [index(1n).byteLength, CHUNK_BYTES, CHUNK_BYTES, 12_345],
      "A's one checkpoint before the takeover, then B's in chunks",
    );
    assert.ok(CHUNK_BYTES <= 1024 * 1024, 'chunks are at most 1 MiB');
    await leaseB.release();
    await leaseA.release();
  });

  it('reads back across a ledger rollover, walking back through deltas that name no full checkpoint', async () => {
    const prefix = uniqueName('rollover');
    const driver = driverOf(prefix);
    await driver.open(); // makes the topics
    await driver.close();
    const full = encodeIndex({ through: 5n, streams: new Map([['s', [1, 5]]]), ids: [] });
    await sendRaw(prefix, checkpointChunks(full, 'full'));
    const unloaded = await admin('PUT', `persistent/public/${namespace}/${prefix}-index-partition-0/unload`);
    assert.ok(unloaded.ok, `unload answered ${unloaded.status}`); // the next message opens a new ledger
    const deltas = Array.from({ length: 12 }, (_, i) => checkpointChunks(new Uint8Array([i]), 'delta')).flat();
    await sendRaw(prefix, deltas);
    const read = await readCheckpoints(prefix);
    sameBytes(read.full, full, 'the full checkpoint in the older ledger');
    sameBytes(read.delta, new Uint8Array([11]), 'and the last delta after it');
    assert.ok(read.received <= 13, `${read.received} messages received (windows of 8 and 16, of 13 entries)`);
  });
});

describe('pulsar index checkpoint chunks', () => {
  let entry = 0n;
  const asRead = (chunks: ReturnType<typeof checkpointChunks>): Message[] =>
    chunks.map((c) => ({
      topic: 't',
      messageId: { ledgerId: 7n, entryId: entry++, partition: -1, batchIndex: -1 },
      payload: c.payload,
      key: undefined,
      properties: c.properties,
      producerName: 'p',
      sequenceId: 0n,
      publishTime: 0,
      eventTime: undefined,
      redeliveryCount: 0,
    }));

  it('splits a checkpoint into chunks of at most CHUNK_BYTES and reassembles it', () => {
    const big = new Uint8Array(CHUNK_BYTES * 2 + 5).map((_, i) => i % 251);
    const chunks = checkpointChunks(big, 'full');
    assert.deepEqual(
      chunks.map((c) => c.payload.byteLength),
      [CHUNK_BYTES, CHUNK_BYTES, 5],
    );
    const found = assemble(asRead(chunks));
    assert.equal(found.length, 1);
    sameBytes(bytesOf(found[0]!), big, 'reassembled');
  });

  it('skips torn checkpoints and stray chunks; keeps the last full one and the last delta after it', () => {
    const full = asRead(checkpointChunks(new Uint8Array([1]), 'full'));
    const torn = asRead(checkpointChunks(new Uint8Array(CHUNK_BYTES + 1), 'full')).slice(0, 1);
    const oldDelta = asRead(checkpointChunks(new Uint8Array([2]), 'delta'));
    const stray = asRead(checkpointChunks(new Uint8Array(CHUNK_BYTES + 1), 'delta')).slice(1);
    const delta = asRead(checkpointChunks(new Uint8Array([3]), 'delta'));
    const { full: f, delta: d } = latest(assemble([...oldDelta, ...full, ...torn, ...stray, ...delta]));
    sameBytes(f && bytesOf(f), new Uint8Array([1]), 'the last complete full checkpoint');
    sameBytes(d && bytesOf(d), new Uint8Array([3]), 'the last delta after it');
    assert.equal(
      latest(assemble([...full, ...oldDelta, ...asRead(checkpointChunks(new Uint8Array([4]), 'full'))])).delta,
      undefined,
      'a delta before the last full one is older than it',
    );
  });

  it('a delta names its full checkpoint; a malformed reference is none', () => {
    const [full] = assemble(asRead(checkpointChunks(new Uint8Array([1]), 'full')));
    const ref = refOf(full!);
    const [delta] = asRead(checkpointChunks(new Uint8Array([2]), 'delta', ref));
    const parsed = parseFullRef(delta!.properties[IP.full]);
    assert.deepEqual(parsed, ref);
    assert.ok(isRef(full!, parsed!));
    for (const bad of ['', '1:2', '1:2:x:1', `1:2:${ref.generation}:0`, `-1:2:${ref.generation}:1`])
      assert.equal(parseFullRef(bad), undefined, bad);
    assert.equal(checkpointChunks(new Uint8Array([1]), 'full', ref)[0]!.properties[IP.full], undefined, 'only deltas carry it');
  });
});
