import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { PULSAR_URL, PULSAR_WS_URL, uniqueName } from './env.ts';

const tenant = uniqueName('smoke-tenant');
const namespace = `${tenant}/events`;

async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${PULSAR_URL}/admin/v2/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
}

async function adminOk(method: string, path: string, body?: unknown): Promise<Response> {
  const res = await admin(method, path, body);
  assert.ok(res.ok, `${method} /admin/v2/${path} answered ${res.status}: ${await res.clone().text()}`);
  return res;
}

after(async () => {
  // best effort: leave nothing behind
  await admin('DELETE', `namespaces/${namespace}?force=true`).catch(() => undefined);
  await admin('DELETE', `tenants/${tenant}?force=true`).catch(() => undefined);
});

/** Opens a WebSocket and resolves once it is open; rejects on error or close before open. */
function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`WebSocket ${url} did not open within 15 s`));
    }, 15_000);
    ws.addEventListener('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.addEventListener('error', () => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${url} failed to open`));
    });
  });
}

/** Collects the next `count` JSON messages of a socket. */
function nextMessages(ws: WebSocket, count: number, timeoutMs = 20_000): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const got: Array<Record<string, unknown>> = [];
    const timer = setTimeout(() => {
      ws.removeEventListener('message', onMessage);
      reject(new Error(`got ${got.length} of ${count} WebSocket messages within ${timeoutMs} ms`));
    }, timeoutMs);
    function onMessage(event: MessageEvent): void {
      got.push(JSON.parse(String(event.data)) as Record<string, unknown>);
      if (got.length === count) {
        clearTimeout(timer);
        ws.removeEventListener('message', onMessage);
        resolve(got);
      }
    }
    ws.addEventListener('message', onMessage);
  });
}

test('pulsar: create a tenant and a namespace over the admin REST API', async () => {
  await adminOk('PUT', `tenants/${tenant}`, { allowedClusters: ['standalone'], adminRoles: [] });
  await adminOk('PUT', `namespaces/${namespace}`);
  const list = (await (await adminOk('GET', `namespaces/${tenant}`)).json()) as unknown;
  assert.deepEqual(list, [namespace]);
  const clusters = (await (await adminOk('GET', 'clusters')).json()) as unknown;
  assert.ok(Array.isArray(clusters) && clusters.includes('standalone'));
});

test('pulsar: produce and consume over the WebSocket API', { timeout: 90_000 }, async () => {
  const topic = uniqueName('smoke-topic');
  const path = `persistent/${namespace}/${topic}`;

  // subscribe first: a new subscription starts at the latest message
  const consumer = await open(`${PULSAR_WS_URL}/ws/v2/consumer/${path}/smoke-sub?subscriptionType=Exclusive`);
  const producer = await open(`${PULSAR_WS_URL}/ws/v2/producer/${path}`);
  try {
    const received = nextMessages(consumer, 2);

    const acks = nextMessages(producer, 2);
    const values = ['placed', 'paid'];
    values.forEach((value, i) => {
      producer.send(
        JSON.stringify({
          payload: Buffer.from(value).toString('base64'),
          properties: { type: value },
          key: 'order-1',
          context: String(i),
        }),
      );
    });
    const produced = await acks;
    for (const ack of produced) {
      assert.equal(ack['result'], 'ok', JSON.stringify(ack));
      assert.equal(typeof ack['messageId'], 'string');
    }

    const messages = await received;
    assert.deepEqual(
      messages.map((m) => Buffer.from(String(m['payload']), 'base64').toString()),
      values,
    );
    assert.deepEqual(
      messages.map((m) => (m['properties'] as Record<string, string>)['type']),
      values,
    );
    assert.deepEqual(
      messages.map((m) => m['key']),
      ['order-1', 'order-1'],
    );
    for (const m of messages) consumer.send(JSON.stringify({ messageId: m['messageId'] }));

    // the broker counts the messages in and sees the subscription
    const stats = (await (await adminOk('GET', `${path}/stats`)).json()) as {
      msgInCounter: number;
      subscriptions: Record<string, { msgBacklog: number }>;
    };
    assert.equal(stats.msgInCounter, 2);
    assert.ok(stats.subscriptions['smoke-sub'] !== undefined);
  } finally {
    producer.close();
    consumer.close();
  }
});
