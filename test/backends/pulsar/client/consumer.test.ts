// Consumers on the real broker: durable subscriptions keep acked and unacked apart across
// reconnects, permits bound the prefetch, negative acks redeliver with a count, Failover has
// one active consumer, seeks by id and by publish time, readers start after a message id, and
// GetLastMessageId names the last stored message.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { PulsarClient } from '../../../../src/backends/pulsar/client/client.ts';
import type { Consumer, Message } from '../../../../src/backends/pulsar/client/consumer.ts';
import { compareMessageIds, EARLIEST, LATEST, type MessageId } from '../../../../src/backends/pulsar/client/message-id.ts';
import { adminOk, str, TestNamespace, text } from './support.ts';

let ns: TestNamespace;
before(async () => {
  ns = await TestNamespace.create('cons');
});
after(() => ns.cleanup());

/** Sends m0..m(n-1) to a new topic; returns the topic and the receipts' message ids. */
async function filled(client: PulsarClient, label: string, n: number): Promise<{ topic: string; ids: MessageId[]; times: number[] }> {
  const topic = ns.topic(label);
  const producer = await client.createProducer({ topic });
  const ids: MessageId[] = [];
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    times.push(Date.now());
    ids.push((await producer.send(text(`m${i}`))).messageId);
    if (label.includes('time')) await new Promise((r) => setTimeout(r, 15));
  }
  await producer.close();
  return { topic, ids, times };
}

async function take(consumer: Consumer, n: number): Promise<Message[]> {
  const out: Message[] = [];
  for (let i = 0; i < n; i++) out.push(await consumer.receive(10_000));
  return out;
}

const payloads = (ms: readonly Message[]): string[] => ms.map((m) => str(m.payload));

test('a durable subscription redelivers what was not acked after a resubscribe, and nothing acked', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'durable', 6);
  const sub = { topic, subscription: 'work', initialPosition: 'earliest' as const };
  const first = await client.subscribe(sub);
  const got = await take(first, 4);
  assert.deepEqual(payloads(got), ['m0', 'm1', 'm2', 'm3']);
  first.ack(got[0]!.messageId);
  first.ack(got[2]!.messageId);
  await first.close();
  const second = await client.subscribe(sub);
  assert.deepEqual(payloads(await take(second, 4)), ['m1', 'm3', 'm4', 'm5']);
});

test('ackCumulative acks everything up to the id', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'cumulative', 6);
  const sub = { topic, subscription: 'cum', initialPosition: 'earliest' as const };
  const first = await client.subscribe(sub);
  const got = await take(first, 4);
  first.ackCumulative(got[3]!.messageId);
  await first.close();
  const second = await client.subscribe(sub);
  assert.deepEqual(payloads(await take(second, 2)), ['m4', 'm5']);
});

test('permits bound what the broker pushes ahead; all messages still arrive in order', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'flow', 40);
  const consumer = await client.subscribe({ topic, subscription: 'flow', initialPosition: 'earliest', receiverQueueSize: 4 });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(consumer.queued <= 4, `${consumer.queued} messages queued with 4 permits`);
  assert.ok(consumer.queued >= 1, 'nothing was pushed ahead');
  const all = await take(consumer, 40);
  assert.deepEqual(
    payloads(all),
    Array.from({ length: 40 }, (_, i) => `m${i}`),
  );
});

test('maxMessages bounds what the broker sends a reader in all; counter counts what it sent', async () => {
  const client = ns.client();
  const { topic, ids } = await filled(client, 'bounded', 40);
  const counter = { received: 0 };
  const reader = await client.subscribe({
    topic,
    subscription: 'bounded',
    durable: false,
    startMessageId: ids[9]!,
    receiverQueueSize: 4,
    maxMessages: 10,
    counter,
  });
  const got = await take(reader, 10);
  assert.deepEqual(
    payloads(got),
    Array.from({ length: 10 }, (_, i) => `m${10 + i}`),
  );
  // Permits handed back after each half queue would let the broker push past the 10 asked for.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(reader.queued, 0, 'nothing pushed past maxMessages');
  // The broker starts a reader at its start entry, which the reader skips (its start is exclusive): 1 + 10.
  assert.equal(counter.received, 11, 'the counter saw exactly what the broker sent');
  await reader.close();
  const unbounded = await client.subscribe({
    topic,
    subscription: 'unbounded',
    durable: false,
    startMessageId: ids[9]!,
    receiverQueueSize: 4,
    counter,
  });
  await take(unbounded, 10);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(unbounded.queued > 0, 'without maxMessages the broker pushes ahead again');
  await unbounded.close();
});

test('a negative ack on a Shared subscription redelivers the message with its redelivery count', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'nack', 3);
  const consumer = await client.subscribe({ topic, subscription: 'shared', type: 'Shared', initialPosition: 'earliest' });
  const [m0] = await take(consumer, 1);
  assert.equal(m0!.redeliveryCount, 0);
  consumer.negativeAck([m0!.messageId]);
  const rest = await take(consumer, 3);
  const again = rest.find((m) => compareMessageIds(m.messageId, m0!.messageId) === 0);
  assert.ok(again, `m0 was not redelivered: got ${payloads(rest)}`);
  assert.equal(again.redeliveryCount, 1);
  assert.deepEqual(payloads(rest).sort(), ['m0', 'm1', 'm2']);
});

test('redeliverUnacknowledged on an Exclusive subscription starts again from the first unacked', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'redeliver', 5);
  const consumer = await client.subscribe({ topic, subscription: 'excl', initialPosition: 'earliest' });
  const got = await take(consumer, 3);
  consumer.ack(got[0]!.messageId);
  consumer.redeliverUnacknowledged();
  assert.deepEqual(payloads(await take(consumer, 4)), ['m1', 'm2', 'm3', 'm4']);
});

test('Failover: one consumer is active and gets the messages; the other takes over when it leaves', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'failover', 4);
  const active = new Map<string, boolean>();
  const a = await client.subscribe({
    topic,
    subscription: 'fo',
    type: 'Failover',
    name: 'a',
    initialPosition: 'earliest',
    onActiveChange: (on) => active.set('a', on),
  });
  const b = await client.subscribe({
    topic,
    subscription: 'fo',
    type: 'Failover',
    name: 'b',
    initialPosition: 'earliest',
    onActiveChange: (on) => active.set('b', on),
  });
  // The broker tells after activeConsumerFailoverDelayTimeMillis (1 s by default).
  for (let i = 0; i < 100 && !(active.has('a') && active.has('b') && active.get('a') !== active.get('b')); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const [leader, standby] = active.get('a') === true ? [a, b] : [b, a];
  assert.notEqual(active.get('a'), active.get('b'), `active flags ${JSON.stringify([...active])}`);
  assert.deepEqual(payloads(await take(leader, 2)), ['m0', 'm1']);
  await leader.close();
  // Unacked m0, m1 go to the new active consumer, with the rest.
  assert.deepEqual(payloads(await take(standby, 4)), ['m0', 'm1', 'm2', 'm3']);
});

test('seek by message id: the next message is the one at the id (durable and reader)', async () => {
  const client = ns.client();
  const { topic, ids } = await filled(client, 'seek-id', 8);
  const durable = await client.subscribe({ topic, subscription: 'seeker', initialPosition: 'earliest' });
  assert.deepEqual(payloads(await take(durable, 6)), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  await durable.seek(ids[2]!);
  assert.deepEqual(payloads(await take(durable, 3)), ['m2', 'm3', 'm4']);
  const reader = await client.subscribe({ topic, subscription: 'reader', durable: false, startMessageId: EARLIEST });
  assert.deepEqual(payloads(await take(reader, 7)), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  await reader.seek(ids[1]!);
  assert.deepEqual(payloads(await take(reader, 2)), ['m1', 'm2']);
  await reader.seek(EARLIEST);
  assert.equal(str((await reader.receive(10_000)).payload), 'm0');
});

test('seek by publish time: the next message is the first published at or after it', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'seek-time', 6);
  const durable = await client.subscribe({ topic, subscription: 'by-time', initialPosition: 'earliest' });
  const all = await take(durable, 6);
  await durable.seek(all[3]!.publishTime);
  assert.deepEqual(payloads(await take(durable, 3)), ['m3', 'm4', 'm5']);
});

test('a reader starts after its start id; GetLastMessageId names the last message', async () => {
  const client = ns.client();
  const { topic, ids } = await filled(client, 'reader', 5);
  const reader = await client.subscribe({ topic, subscription: 'r', durable: false, startMessageId: ids[1]! });
  assert.deepEqual(payloads(await take(reader, 3)), ['m2', 'm3', 'm4']);
  assert.equal(compareMessageIds(await reader.getLastMessageId(), ids[4]!), 0);
  await assert.rejects(reader.receive(300), /no message/);
  const empty = await client.subscribe({ topic: ns.topic('empty'), subscription: 'r', durable: false });
  const last = await empty.getLastMessageId();
  assert.ok(compareMessageIds(last, ids[0]!) < 0 || last.entryId >= 1n << 63n, `last of an empty topic: ${last.ledgerId}:${last.entryId}`);
});

test('a reader from LATEST gets what is sent after it subscribed, and nothing before', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'latest', 3);
  const reader = await client.subscribe({ topic, subscription: 'r', durable: false, startMessageId: LATEST });
  const producer = await client.createProducer({ topic });
  await producer.send(text('after-1'));
  await producer.send(text('after-2'));
  assert.deepEqual(payloads(await take(reader, 2)), ['after-1', 'after-2']);
  await assert.rejects(reader.receive(300), /no message/);
  await producer.close();
});

test('a consumer resubscribes after its connection drops and goes on where the app left off', async () => {
  const client = ns.client();
  const { topic } = await filled(client, 'reconnect', 6);
  const reader = await client.subscribe({ topic, subscription: 'rr', durable: false, startMessageId: EARLIEST, receiverQueueSize: 2 });
  assert.deepEqual(payloads(await take(reader, 2)), ['m0', 'm1']);
  (await client.connectionFor(topic)).close();
  assert.deepEqual(payloads(await take(reader, 4)), ['m2', 'm3', 'm4', 'm5']);
});

test('whenQueued on a consumer that has ended waits its timeout out: a loop waiting on it idles, it does not spin', async () => {
  const client = ns.client();
  const consumer = await client.subscribe({ topic: ns.topic('ended'), subscription: 'ended', initialPosition: 'earliest' });
  await consumer.close();
  assert.ok(consumer.ended);
  const started = Date.now();
  await consumer.whenQueued(200);
  assert.ok(Date.now() - started >= 190, `waited ${Date.now() - started} ms`);
  // A consumer closed while one waits wakes it at once.
  const open = await client.subscribe({ topic: ns.topic('ended'), subscription: 'ended-2', initialPosition: 'earliest' });
  const waiting = open.whenQueued(10_000);
  const closing = Date.now();
  await open.close();
  await waiting;
  assert.ok(Date.now() - closing < 2000, 'woken by the close');
});

test('whenQueued waits without taking, tryReceive takes without waiting, ackAndWait resolves once the cursor has the ack', async () => {
  const client = ns.client();
  const empty = await client.subscribe({ topic: ns.topic('empty'), subscription: 'idle', initialPosition: 'earliest' });
  assert.equal(empty.tryReceive(), undefined, 'nothing queued: undefined at once');
  const waited = Date.now();
  await empty.whenQueued(150);
  assert.ok(Date.now() - waited >= 140 && empty.queued === 0, 'whenQueued ran out its timeout on an empty topic');

  const { topic } = await filled(client, 'queued', 3);
  const sub = { topic, subscription: 'receipts', initialPosition: 'earliest' as const };
  const first = await client.subscribe(sub);
  await first.whenQueued(10_000);
  const queued = first.queued;
  assert.ok(queued > 0, 'a message is queued');
  assert.equal(first.queued, queued, 'whenQueued took nothing');
  const m0 = first.tryReceive();
  assert.equal(m0 && str(m0.payload), 'm0');
  await first.ackAndWait([m0!.messageId]);
  const stats = (await (await adminOk('GET', `persistent/${topic.slice('persistent://'.length)}/stats`)).json()) as {
    subscriptions: Record<string, { msgBacklog: number }>;
  };
  assert.equal(stats.subscriptions.receipts?.msgBacklog, 2, 'the broker had the ack when ackAndWait resolved');
  first.dropQueued();
  assert.equal(first.queued, 0, 'dropQueued empties the queue');
  await first.close();
  const second = await client.subscribe(sub);
  assert.deepEqual(payloads(await take(second, 2)), ['m1', 'm2'], 'the acked message is not delivered again');
});
