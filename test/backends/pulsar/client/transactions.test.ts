// Transactions on the real broker's coordinators: messages sent in a transaction stay hidden
// from readers until commit, then appear on both topics; an aborted transaction's never do.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PulsarServerError } from '../../../../src/backends/pulsar/client/errors.ts';
import { EARLIEST } from '../../../../src/backends/pulsar/client/message-id.ts';
import { TransactionCoordinators } from '../../../../src/backends/pulsar/client/transactions.ts';
import { str, TestNamespace, text } from './support.ts';

let ns: TestNamespace;
before(async () => {
  ns = await TestNamespace.create('txn');
});
after(() => ns.cleanup());

test('a committed transaction shows its messages on both topics; before commit readers see nothing', async () => {
  const client = ns.client();
  const tc = new TransactionCoordinators(client);
  const [a, b] = [ns.topic('txn-a'), ns.topic('txn-b')];
  const pa = await client.createProducer({ topic: a });
  const pb = await client.createProducer({ topic: b });
  const ra = await client.subscribe({ topic: a, subscription: 'r', durable: false, startMessageId: EARLIEST });
  const rb = await client.subscribe({ topic: b, subscription: 'r', durable: false, startMessageId: EARLIEST });
  const txn = await tc.begin(30_000);
  await tc.addPartitions(txn, [a, b]);
  await pa.send(text('a1'), { txn });
  await pb.send(text('b1'), { txn });
  await assert.rejects(ra.receive(400), /no message/, 'an uncommitted message was visible');
  await tc.commit(txn);
  assert.equal(str((await ra.receive(10_000)).payload), 'a1');
  assert.equal(str((await rb.receive(10_000)).payload), 'b1');
});

test('an aborted transaction hides its messages; a later plain message is read', async () => {
  const client = ns.client();
  const tc = new TransactionCoordinators(client);
  const topic = ns.topic('txn-abort');
  const producer = await client.createProducer({ topic });
  const txn = await tc.begin();
  await tc.addPartitions(txn, [topic]);
  await producer.send(text('aborted'), { txn });
  await tc.abort(txn);
  await producer.send(text('plain'));
  const reader = await client.subscribe({ topic, subscription: 'r', durable: false, startMessageId: EARLIEST });
  assert.equal(str((await reader.receive(10_000)).payload), 'plain');
  // Ending it again is refused by the coordinator with a typed error.
  await assert.rejects(tc.commit(txn), PulsarServerError);
});

test('an ack inside a transaction takes effect on commit and is dropped on abort', async () => {
  const client = ns.client();
  const tc = new TransactionCoordinators(client);
  const topic = ns.topic('txn-ack');
  const producer = await client.createProducer({ topic });
  await producer.send(text('m0'));
  await producer.send(text('m1'));
  const sub = { topic, subscription: 'work', initialPosition: 'earliest' as const };
  const first = await client.subscribe(sub);
  const m0 = await first.receive(10_000);
  const aborted = await tc.begin();
  await tc.addSubscriptions(aborted, [{ topic, subscription: 'work' }]);
  await first.ackInTransaction(m0.messageId, aborted);
  await tc.abort(aborted);
  await first.close();
  const second = await client.subscribe(sub);
  const again = await second.receive(10_000);
  assert.equal(str(again.payload), 'm0', 'the aborted ack acked it anyway');
  const committed = await tc.begin();
  await tc.addSubscriptions(committed, [{ topic, subscription: 'work' }]);
  await second.ackInTransaction(again.messageId, committed);
  await tc.commit(committed);
  await second.close();
  const third = await client.subscribe(sub);
  assert.equal(str((await third.receive(10_000)).payload), 'm1');
});
