// Connections: the handshake with the real broker, keep-alive against the broker and against a
// silent peer, token credentials on the wire (a fake broker records CONNECT, the standalone
// runs without auth), refused and unreachable endpoints as typed errors, and lookups.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { PulsarClient } from '../../../../src/backends/pulsar/client/client.ts';
import { Connection, tokenAuth } from '../../../../src/backends/pulsar/client/connection.ts';
import { ConnectionClosedError, PulsarServerError } from '../../../../src/backends/pulsar/client/errors.ts';
import { ServerError } from '../../../../src/backends/pulsar/client/proto/PulsarApi_pb.ts';
import { InvalidArgumentError } from '../../../../src/core/errors.ts';
import { PULSAR_SERVICE_URL } from '../../../services/env.ts';
import { fakeBroker } from './fake-broker.ts';
import { TestNamespace } from './support.ts';

let ns: TestNamespace;
before(async () => {
  ns = await TestNamespace.create('conn');
});
after(() => ns.cleanup());

test('connects to the broker and learns its version and message size limit', async () => {
  const conn = await Connection.open({ url: PULSAR_SERVICE_URL });
  try {
    assert.match(conn.serverVersion, /4\.0\.\d+/);
    assert.ok(conn.maxMessageSize >= 1024 * 1024, `max message size ${conn.maxMessageSize}`);
  } finally {
    conn.close();
  }
});

test('keep-alive: the broker answers PINGs, so a quiet connection stays open', async () => {
  const conn = await Connection.open({ url: PULSAR_SERVICE_URL, keepAliveIntervalMs: 150 });
  try {
    await new Promise((r) => setTimeout(r, 900));
    assert.equal(conn.closed, false, 'closed although the broker answers PING');
  } finally {
    conn.close();
  }
});

test('keep-alive: a peer that stops answering is dropped after two intervals', async () => {
  const fake = await fakeBroker('connected');
  try {
    const conn = await Connection.open({ url: fake.url, keepAliveIntervalMs: 100 });
    const closed = new Promise<Error>((resolve) => conn.onClose(resolve));
    const error = await closed;
    assert.ok(error instanceof ConnectionClosedError);
    assert.match(error.message, /no answer to PING/);
    assert.ok(fake.counts.pings >= 1, 'sent no PING before giving up');
  } finally {
    fake.close();
  }
});

test('token auth sends the token in CONNECT, fetched anew by a function', async () => {
  const fake = await fakeBroker('connected');
  try {
    let calls = 0;
    const auth = tokenAuth(() => `token-${++calls}`);
    (await Connection.open({ url: fake.url, auth })).close();
    (await Connection.open({ url: fake.url, auth })).close();
    assert.deepEqual(
      fake.connects.map((c) => [c.authMethodName, Buffer.from(c.authData).toString()]),
      [
        ['token', 'token-1'],
        ['token', 'token-2'],
      ],
    );
    assert.ok(fake.connects.every((c) => c.protocolVersion >= 20 && c.featureFlags?.supportsAuthRefresh === true));
  } finally {
    fake.close();
  }
});

test('a broker that refuses the credentials fails the connect with its error', async () => {
  const fake = await fakeBroker('error');
  try {
    await assert.rejects(Connection.open({ url: fake.url, auth: tokenAuth('wrong') }), (e: unknown) => {
      assert.ok(e instanceof PulsarServerError);
      assert.equal(e.serverError, ServerError.AuthenticationError);
      assert.match(e.message, /bad token/);
      return true;
    });
  } finally {
    fake.close();
  }
});

test('nothing listening is a ConnectionClosedError, a bad URL an error at once', async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await assert.rejects(Connection.open({ url: `pulsar://127.0.0.1:${port}` }), ConnectionClosedError);
  // Producers and consumers retry an unreachable broker, then give up loudly.
  const dead = new PulsarClient({ serviceUrl: `pulsar://127.0.0.1:${port}` });
  const started = Date.now();
  await assert.rejects(dead.createProducer({ topic: 'persistent://public/default/x', createTimeoutMs: 400 }), ConnectionClosedError);
  await assert.rejects(
    dead.subscribe({ topic: 'persistent://public/default/x', subscription: 's', createTimeoutMs: 400 }),
    ConnectionClosedError,
  );
  const took = Date.now() - started;
  assert.ok(took >= 700 && took < 5000, `gave up after ${took} ms`);
  await dead.close();
  assert.throws(() => new PulsarClient({ serviceUrl: 'http://127.0.0.1:8080' }), /invalid Pulsar service URL/);
});

test('lookup finds the broker of a topic; partitioned metadata counts partitions', async () => {
  const client = ns.client();
  const plain = ns.topic('plain');
  const found = await client.lookup(plain);
  assert.match(found.brokerUrl, /^pulsar:\/\/[^/]+:\d+$/);
  assert.equal(await client.partitions(plain), 0);
  assert.deepEqual(await client.partitionNames(plain), [plain]);
  const parted = await ns.createPartitionedTopic('parted', 3);
  assert.equal(await client.partitions(parted), 3);
  assert.deepEqual(
    await client.partitionNames(parted),
    [0, 1, 2].map((i) => `${parted}-partition-${i}`),
  );
  const partition = await client.lookup(`${parted}-partition-2`);
  assert.match(partition.brokerUrl, /^pulsar:\/\//);
});

test('lookups of bad names fail typed: invalid argument locally, broker error remotely', async () => {
  const client = ns.client();
  await assert.rejects(client.lookup('not-a-topic'), InvalidArgumentError);
  await assert.rejects(client.lookup('persistent://no-such-tenant-xyz/ns/t'), (e: unknown) => {
    assert.ok(e instanceof PulsarServerError, String(e));
    return true;
  });
});
