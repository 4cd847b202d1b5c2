import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { REDIS_URL, uniqueName } from './env.ts';

type Client = ReturnType<typeof createClient>;
let client: Client;

before(async () => {
  client = createClient({ url: REDIS_URL, socket: { connectTimeout: 5000, reconnectStrategy: false } });
  client.on('error', () => undefined); // surfaced through the failing command instead
  await client.connect();
});

after(async () => {
  await client?.close();
});

test('redis: XADD, XREADGROUP and XACK on a stream', async () => {
  const stream = uniqueName('smoke-stream');
  const group = 'smoke-group';
  try {
    const id1 = await client.xAdd(stream, '*', { type: 'OrderPlaced', n: '1' });
    const id2 = await client.xAdd(stream, '*', { type: 'OrderPaid', n: '2' });
    assert.match(id1, /^\d+-\d+$/);

    await client.xGroupCreate(stream, group, '0');
    const read = await client.xReadGroup(group, 'c1', { key: stream, id: '>' }, { COUNT: 10, BLOCK: 1000 });
    assert.ok(read !== null && Array.isArray(read), 'XREADGROUP returned nothing');
    const messages = (read as Array<{ name: string; messages: Array<{ id: string; message: Record<string, string> }> }>)[0]?.messages ?? [];
    assert.deepEqual(
      messages.map((m) => m.id),
      [id1, id2],
    );
    assert.deepEqual(
      messages.map((m) => m.message['type']),
      ['OrderPlaced', 'OrderPaid'],
    );

    const pendingBefore = await client.xPending(stream, group);
    assert.equal(pendingBefore.pending, 2);
    assert.equal(await client.xAck(stream, group, [id1, id2]), 2);
    const pendingAfter = await client.xPending(stream, group);
    assert.equal(pendingAfter.pending, 0);

    // nothing new for the group
    const again = await client.xReadGroup(group, 'c1', { key: stream, id: '>' }, { COUNT: 10, BLOCK: 100 });
    assert.ok(again === null || (again as Array<{ messages: unknown[] }>)[0]?.messages.length === 0);
  } finally {
    await client.del(stream);
  }
});

test('redis: append-only file is on', async () => {
  const config = await client.configGet('appendonly');
  assert.equal(config['appendonly'], 'yes');
});
