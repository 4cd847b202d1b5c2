// A connection that dies just as the broker answers a SUBSCRIBE or PRODUCER: the client learns
// of the close while it is not "ready" yet. It must register again, never settle as "ready" on a
// dead connection (a reader's GetLastMessageId then waited forever; a producer's sends failed).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Connection } from '../../../../src/backends/pulsar/client/connection.ts';
import type { Consumer, Message } from '../../../../src/backends/pulsar/client/consumer.ts';
import { compareMessageIds, EARLIEST, type MessageId } from '../../../../src/backends/pulsar/client/message-id.ts';
import { type BaseCommand, BaseCommand_Type as T } from '../../../../src/backends/pulsar/client/proto/PulsarApi_pb.ts';
import { str, TestNamespace, text } from './support.ts';

let ns: TestNamespace;
before(async () => {
  ns = await TestNamespace.create('lost');
});
after(() => ns.cleanup());

async function take(consumer: Consumer, n: number): Promise<Message[]> {
  const out: Message[] = [];
  for (let i = 0; i < n; i++) out.push(await consumer.receive(10_000));
  return out;
}

/**
 * Closes a connection right after the broker answers the next command of `type` on it that
 * `match` picks, before the client's code after that answer runs: as when that answer and a
 * reset of the socket arrive in one read (CI: readers of a takeover stuck "ready" on a dead
 * connection, so a claim's GetLastMessageId waited forever). On every connection, new ones too.
 */
function dropAfterNextAnswer(type: T, match: (cmd: BaseCommand) => boolean): { dropped: () => boolean; restore: () => void } {
  const request = Connection.prototype.request;
  let dropped = false;
  Connection.prototype.request = function (this: Connection, cmd, requestId, what, options) {
    return request.call(this, cmd, requestId, what, options).then((answer) => {
      if (cmd.type === type && match(cmd) && !dropped) {
        dropped = true;
        this.close();
      }
      return answer;
    });
  };
  const restore = (): void => {
    Connection.prototype.request = request;
  };
  return { dropped: () => dropped, restore };
}

const withinTenSeconds = <V>(work: Promise<V>): Promise<V | 'stuck'> =>
  Promise.race([work, new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 10_000).unref())]);

test('a connection lost just as the broker answers a resubscribe: the reader subscribes again and serves, not "ready" on a dead connection', async () => {
  const client = ns.client();
  const topic = ns.topic('lost-on-subscribe');
  const producer = await client.createProducer({ topic });
  const ids: MessageId[] = [];
  for (const m of ['m0', 'm1', 'm2']) ids.push((await producer.send(text(m))).messageId);
  await producer.close();
  // A reader that took all it may (maxMessages): its resubscribe sends no FLOW, which would have failed on the dead connection.
  const reader = await client.subscribe({ topic, subscription: 'lost', durable: false, startMessageId: EARLIEST, maxMessages: 1 });
  assert.deepEqual(
    (await take(reader, 1)).map((m) => str(m.payload)),
    ['m0'],
  );
  const drop = dropAfterNextAnswer(T.SUBSCRIBE, (cmd) => cmd.subscribe?.subscription === 'lost');
  try {
    (await client.connectionFor(topic)).close(); // the reader subscribes again, and loses that connection as it is answered
    const last = await withinTenSeconds(reader.getLastMessageId());
    assert.ok(drop.dropped(), 'the connection was closed right after the SUBSCRIBE answer');
    assert.notEqual(last, 'stuck', 'GetLastMessageId answered within 10 s');
    assert.equal(compareMessageIds(last as MessageId, ids[2]!), 0);
  } finally {
    drop.restore();
  }
  await reader.close();
});

test('a connection lost just as the broker answers PRODUCER: the producer connects again and sends', async () => {
  const client = ns.client();
  const topic = ns.topic('lost-on-producer');
  const drop = dropAfterNextAnswer(T.PRODUCER, (cmd) => cmd.producer?.topic === topic);
  try {
    const producer = await client.createProducer({ topic });
    assert.ok(drop.dropped(), 'the connection was closed right after the PRODUCER answer');
    const sent = await withinTenSeconds(producer.send(text('after')));
    assert.notEqual(sent, 'stuck', 'the send got its receipt within 10 s');
    await producer.close();
  } finally {
    drop.restore();
  }
});
