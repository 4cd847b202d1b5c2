// Producers on the real broker: receipts in sequence order, access modes and topic epochs, a
// fencing producer fencing the old one (typed error on its next send, and its stale epoch
// refused), WaitForExclusive taking over, deduplicated resends, the in-flight bound, and a
// producer closed by the broker (unload: registers again; terminate: typed errors).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PulsarClient } from '../../../../src/backends/pulsar/client/client.ts';
import {
  ClosedError,
  MessageTooLargeError,
  ProducerFencedError,
  PulsarServerError,
  PulsarTimeoutError,
} from '../../../../src/backends/pulsar/client/errors.ts';
import { compareMessageIds, EARLIEST } from '../../../../src/backends/pulsar/client/message-id.ts';
import { fakeBroker } from './fake-broker.ts';
import { ServerError } from '../../../../src/backends/pulsar/client/proto/PulsarApi_pb.ts';
import { adminOk, str, TestNamespace, text } from './support.ts';

let ns: TestNamespace;
let dedup: TestNamespace;
before(async () => {
  ns = await TestNamespace.create('prod');
  dedup = await TestNamespace.create('dedup', { deduplication: true });
});
after(async () => {
  await ns.cleanup();
  await dedup.cleanup();
});

test('sends get receipts with increasing sequence ids and message ids, readable in order', async () => {
  const client = ns.client();
  const topic = ns.topic('receipts');
  const producer = await client.createProducer({ topic, name: 'receipts-writer' });
  assert.equal(producer.name, 'receipts-writer');
  const receipts = await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send(text(`m${i}`), { properties: { i: String(i) } })));
  assert.deepEqual(
    receipts.map((r) => r.sequenceId),
    Array.from({ length: 20 }, (_, i) => BigInt(i)),
  );
  for (let i = 1; i < receipts.length; i++) assert.equal(compareMessageIds(receipts[i - 1]!.messageId, receipts[i]!.messageId), -1);
  assert.ok(receipts.every((r) => !r.duplicate));
  const reader = await client.subscribe({ topic, subscription: 'check', durable: false, startMessageId: EARLIEST });
  for (let i = 0; i < 20; i++) {
    const m = await reader.receive(10_000);
    assert.equal(str(m.payload), `m${i}`);
    assert.equal(m.properties['i'], String(i));
    assert.equal(m.sequenceId, BigInt(i));
    assert.equal(m.producerName, 'receipts-writer');
    assert.equal(compareMessageIds(m.messageId, receipts[i]!.messageId), 0);
  }
});

test('a second ExclusiveWithFencing producer fences the first: its next send fails ProducerFencedError', async () => {
  const topic = ns.topic('fencing');
  const first = await ns.client().createProducer({ topic, name: 'owner-a', accessMode: 'ExclusiveWithFencing' });
  await first.send(text('from a'));
  const epochA = first.topicEpoch;
  assert.notEqual(epochA, undefined);
  const second = await ns.client().createProducer({ topic, name: 'owner-b', accessMode: 'ExclusiveWithFencing' });
  assert.ok(second.topicEpoch! > epochA!, `epoch ${second.topicEpoch} after ${epochA}`);
  // The broker gives the old owner no notice; its next send closes its connection, and the
  // re-registration with the old epoch is refused.
  await assert.rejects(first.send(text('late a')), ProducerFencedError);
  await assert.rejects(first.send(text('later a')), ProducerFencedError);
  const receipt = await second.send(text('from b'));
  assert.equal(receipt.duplicate, false);
  // The stale epoch is refused for a new producer as well.
  await assert.rejects(
    ns.client().createProducer({ topic, name: 'owner-a', accessMode: 'Exclusive', topicEpoch: epochA }),
    ProducerFencedError,
  );
});

test('closing a fencing producer while another client fences it, again and again, never wedges the topic', {
  timeout: 180_000,
}, async () => {
  // Pulsar 4.0.7 deadlocks a topic's IO threads when CLOSE_PRODUCER meets a fencing producer's
  // registration (Producer.close vs incrementTopicEpochIfNeeded): close drops it instead.
  const topic = ns.topic('close-vs-fence');
  const [one, two] = [ns.client(), ns.client()];
  let owner = await one.createProducer({ topic, name: 'owner', accessMode: 'ExclusiveWithFencing', createTimeoutMs: 10_000 });
  for (let round = 0; round < 150; round++) {
    const next = round % 2 === 0 ? two : one;
    const [, taker] = await Promise.all([
      owner.close(),
      next.createProducer({ topic, name: 'owner', accessMode: 'ExclusiveWithFencing', createTimeoutMs: 10_000 }),
    ]);
    owner = taker;
  }
  const receipt = await owner.send(text('still served'));
  assert.equal(receipt.duplicate, false);
  await owner.close();
});

test('a second Exclusive producer is refused with ProducerFencedError; Shared producers coexist', async () => {
  const topic = ns.topic('exclusive');
  const owner = await ns.client().createProducer({ topic, accessMode: 'Exclusive' });
  await assert.rejects(ns.client().createProducer({ topic, accessMode: 'Exclusive' }), (e: unknown) => {
    assert.ok(e instanceof ProducerFencedError, String(e));
    assert.equal(e.topic, topic);
    return true;
  });
  await owner.send(text('still mine'));
  const shared = ns.topic('shared');
  const a = await ns.client().createProducer({ topic: shared });
  const b = await ns.client().createProducer({ topic: shared });
  await Promise.all([a.send(text('a')), b.send(text('b'))]);
});

test('WaitForExclusive waits until the owner closes, then gets the topic with a new epoch', async () => {
  const topic = ns.topic('wait');
  const owner = await ns.client().createProducer({ topic, accessMode: 'Exclusive' });
  let got: bigint | undefined | 'not yet' = 'not yet';
  const waiting = ns.client().createProducer({ topic, accessMode: 'WaitForExclusive', onExclusive: (epoch) => (got = epoch) });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(got, 'not yet', 'the standby got the topic while the owner held it');
  await owner.close();
  const standby = await waiting;
  assert.notEqual(got, 'not yet');
  assert.ok(standby.topicEpoch! > owner.topicEpoch!, `epoch ${standby.topicEpoch} after ${owner.topicEpoch}`);
  await standby.send(text('standby writes'));
  await assert.rejects(owner.send(text('closed')), ClosedError);
});

test('with deduplication a resent sequence id is acked as a duplicate and stored once', async () => {
  const topic = dedup.topic('dedup');
  const client = dedup.client();
  const first = await client.createProducer({ topic, name: 'dedup-writer' });
  const r0 = await first.send(text('zero'), { sequenceId: 10n });
  assert.equal(r0.duplicate, false);
  await first.close();
  const again = await client.createProducer({ topic, name: 'dedup-writer' });
  assert.equal(again.lastSequenceId, 10n, 'the broker remembers the high-water mark of the name');
  const dup = await again.send(text('zero again'), { sequenceId: 10n });
  assert.equal(dup.duplicate, true);
  const next = await again.send(text('eleven'));
  assert.equal(next.sequenceId, 11n);
  const reader = await client.subscribe({ topic, subscription: 'check', durable: false, startMessageId: EARLIEST });
  assert.equal(str((await reader.receive(10_000)).payload), 'zero');
  assert.equal(str((await reader.receive(10_000)).payload), 'eleven');
  await assert.rejects(reader.receive(300), /no message/);
});

test('send waits while maxPendingMessages are in flight, and refuses messages over the size limit', async () => {
  const producer = await ns.client().createProducer({ topic: ns.topic('bound'), maxPendingMessages: 3 });
  let highest = 0;
  const sends = Array.from({ length: 30 }, (_, i) => {
    const p = producer.send(text(`m${i}`));
    highest = Math.max(highest, producer.inFlight);
    return p;
  });
  const poll = setInterval(() => (highest = Math.max(highest, producer.inFlight)), 1);
  await Promise.all(sends);
  clearInterval(poll);
  assert.ok(highest <= 3, `${highest} messages were in flight`);
  assert.ok(highest >= 1);
  await assert.rejects(producer.send(new Uint8Array(6 * 1024 * 1024)), MessageTooLargeError);
});

test('after a dropped connection the producer registers again and resends in-flight messages once (dedup)', async () => {
  const client = dedup.client();
  const topic = dedup.topic('reconnect');
  const producer = await client.createProducer({ topic, name: 'reconnect-writer', accessMode: 'ExclusiveWithFencing' });
  const epoch = producer.topicEpoch;
  const conn = await client.connectionFor(topic);
  const sends = Array.from({ length: 50 }, (_, i) => producer.send(text(`m${i}`)));
  assert.equal(producer.inFlight, 50);
  conn.close();
  const receipts = await Promise.all(sends);
  assert.deepEqual(
    receipts.map((r) => r.sequenceId),
    Array.from({ length: 50 }, (_, i) => BigInt(i)),
  );
  assert.equal(producer.topicEpoch, epoch, 'the re-registration kept the epoch');
  await producer.send(text('after'));
  const reader = await client.subscribe({ topic, subscription: 'check', durable: false, startMessageId: EARLIEST });
  const seen: string[] = [];
  for (let i = 0; i < 51; i++) seen.push(str((await reader.receive(10_000)).payload));
  assert.deepEqual(seen, [...Array.from({ length: 50 }, (_, i) => `m${i}`), 'after']);
  await assert.rejects(reader.receive(300), /no message/);
});

test('a send without a receipt rejects PulsarTimeoutError; close rejects what is still in flight', async () => {
  const fake = await fakeBroker('connected');
  const client = new PulsarClient({ serviceUrl: fake.url });
  try {
    const producer = await client.createProducer({ topic: 'persistent://public/default/silent', sendTimeoutMs: 200 });
    const started = Date.now();
    await assert.rejects(producer.send(text('lost')), (e: unknown) => {
      assert.ok(e instanceof PulsarTimeoutError, String(e));
      assert.match(e.message, /may or may not be stored/);
      return true;
    });
    assert.ok(Date.now() - started >= 190, `timed out after ${Date.now() - started} ms`);
    const pending = assert.rejects(producer.send(text('pending')), ClosedError);
    await producer.close();
    await pending;
    await assert.rejects(producer.send(text('after close')), ClosedError);
    assert.equal(fake.counts.sends, 2, 'both frames reached the broker');
  } finally {
    await client.close();
    fake.close();
  }
});

test('a topic unload (CLOSE_PRODUCER, CLOSE_CONSUMER) is survived; a terminated topic fails sends typed', async () => {
  const client = ns.client();
  const topic = ns.topic('unload');
  const path = `persistent/${topic.slice('persistent://'.length)}`;
  const producer = await client.createProducer({ topic, name: 'unload-writer', accessMode: 'Exclusive' });
  const reader = await client.subscribe({ topic, subscription: 'r', durable: false, startMessageId: EARLIEST });
  await producer.send(text('before'));
  await adminOk('PUT', `${path}/unload`);
  await producer.send(text('after unload'));
  assert.deepEqual([str((await reader.receive(10_000)).payload), str((await reader.receive(10_000)).payload)], ['before', 'after unload']);
  await adminOk('POST', `${path}/terminate`);
  const terminated = (e: unknown): boolean => {
    assert.ok(e instanceof PulsarServerError, String(e));
    assert.equal(e.serverError, ServerError.TopicTerminatedError);
    return true;
  };
  await assert.rejects(producer.send(text('too late')), terminated);
  await assert.rejects(producer.send(text('later still')), terminated);
});
