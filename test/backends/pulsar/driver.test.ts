// The Pulsar driver's own behaviour on the real standalone: what open() provisions (read back
// through admin REST), isolation between namespaces and tenants, and the limits it refuses.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AppendTooLargeError, createEventStore, DriverError, InvalidArgumentError } from '../../../src/index.ts';
import { pulsar, type PulsarDriverOptions } from '../../../src/backends/pulsar/index.ts';
import { MAX_COMMIT_EVENTS } from '../../../src/backends/pulsar/records.ts';
import { accountEvents, Deposited } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { admin, dropNamespace } from './support.ts';

const tenant = uniqueName('tenant');
const namespaces: string[] = [];
after(async () => {
  for (const ns of namespaces) await dropNamespace(tenant, ns);
  const gone = await admin('DELETE', `tenants/${tenant}`);
  assert.ok(gone.ok, `deleting tenant ${tenant} answered ${gone.status}`);
});

function open(options: PulsarDriverOptions) {
  if (options.namespace && !namespaces.includes(options.namespace)) namespaces.push(options.namespace);
  return createEventStore({
    driver: pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, tenant, partitions: 3, ...options }),
    events: accountEvents,
  });
}

async function json(path: string): Promise<unknown> {
  const res = await admin('GET', path);
  assert.ok(res.ok, `GET ${path} answered ${res.status}`);
  const text = await res.text();
  return text === '' ? undefined : JSON.parse(text);
}

describe('pulsar driver', () => {
  it('provisions the tenant, the namespace (infinite retention, deduplication) and a partitioned events topic', async () => {
    const namespace = uniqueName('ns-setup');
    const store = open({ namespace, prefix: 'shop' });
    await store.append('account-1', Deposited({ amount: 1 }));
    const ns = `${tenant}/${namespace}`;
    assert.ok(((await json('tenants')) as string[]).includes(tenant), 'the tenant was made');
    assert.deepEqual(await json(`namespaces/${ns}/retention`), { retentionTimeInMinutes: -1, retentionSizeInMB: -1 });
    assert.equal(await json(`namespaces/${ns}/deduplication`), true);
    assert.deepEqual(((await json(`persistent/${ns}/shop-events/partitions`)) as { partitions: number }).partitions, 3);
    await store.close();
    // Opening again changes nothing and still works (idempotent setup).
    const again = open({ namespace, prefix: 'shop' });
    assert.equal(await again.streamVersion('account-1'), 1);
    await again.close();
  });

  it('a store in one namespace never sees the events of another, whatever the prefix', async () => {
    const a = uniqueName('ns-a');
    const b = uniqueName('ns-b');
    const storeA = open({ namespace: a, prefix: 'same' });
    const storeB = open({ namespace: b, prefix: 'same' });
    await storeB.append('account-x', [Deposited({ amount: 5 }), Deposited({ amount: 6 })]);
    await storeA.append('account-y', Deposited({ amount: 7 }));
    assert.equal(await storeA.streamVersion('account-x'), 0, "namespace A does not see B's stream");
    const allA = [];
    for await (const e of storeA.readAll()) allA.push(e.streamId);
    assert.deepEqual(allA, ['account-y']);
    const allB = [];
    for await (const e of storeB.readAll()) allB.push(e.streamId);
    assert.deepEqual(allB, ['account-x', 'account-x']);
    // B's topics are in B's namespace only.
    const topicsA = (await json(`namespaces/${tenant}/${a}/topics`)) as string[];
    assert.ok(topicsA.length > 0 && topicsA.every((t) => t.startsWith(`persistent://${tenant}/${a}/`)), topicsA.join(', '));
    await storeA.close();
    await storeB.close();
  });

  it('refuses to open a store with another partition count than its topic has', async () => {
    const namespace = uniqueName('ns-count');
    const first = open({ namespace, prefix: 'p' });
    await first.append('account-1', Deposited({ amount: 1 }));
    await first.close();
    const other = createEventStore({
      driver: pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, tenant, namespace, prefix: 'p', partitions: 5 }),
      events: accountEvents,
    });
    await assert.rejects(
      other.streamVersion('account-1'),
      (e: unknown) => e instanceof DriverError && /3 partitions, not 5/.test(e.message),
    );
    await other.close();
  });

  it(`refuses an append of more than ${MAX_COMMIT_EVENTS} events with AppendTooLargeError, storing nothing`, async () => {
    const namespace = uniqueName('ns-large');
    const store = open({ namespace, prefix: 'l' });
    const events = Array.from({ length: MAX_COMMIT_EVENTS + 1 }, () => Deposited({ amount: 1 }));
    await assert.rejects(store.append('account-big', events), AppendTooLargeError);
    assert.equal(await store.streamVersion('account-big'), 0);
    await store.append('account-big', events.slice(0, MAX_COMMIT_EVENTS));
    assert.equal(await store.streamVersion('account-big'), MAX_COMMIT_EVENTS);
    await store.close();
  });

  it('a scan in pages smaller than what the broker sent goes on from what it received: each message is received about once', async () => {
    const namespace = uniqueName('ns-pages');
    const prefix = 'pages';
    const writer = open({ namespace, prefix, partitions: 1 });
    const COMMITS = 30;
    for (let i = 0; i < COMMITS; i++)
      await writer.append(
        `account-${i}`,
        Array.from({ length: 200 }, () => Deposited({ amount: 1 })),
      );
    await writer.close();
    // A fresh driver reads the partition 1,000 events at a time, as the core's catch-up does.
    const driver = pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, tenant, namespace, prefix, partitions: 1 });
    await driver.open();
    try {
      const before = driver.messagesReceived;
      let after: bigint | undefined;
      let events = 0;
      for (;;) {
        const page = await driver.readPartition(0, { after, limit: 1000 });
        if (page.length === 0) break;
        events += page.length;
        after = page[page.length - 1]!.position.offset;
      }
      assert.equal(events, COMMITS * 200);
      const received = driver.messagesReceived - before;
      // One message a commit, plus a few: a reader's first message again at its start. A new reader per page received about 105.
      assert.ok(received <= COMMITS + 5, `received ${received} messages for ${COMMITS}`);
    } finally {
      await driver.close();
    }
  });

  it('checks its options', () => {
    assert.throws(() => pulsar({ namespace: 'a/b' }), InvalidArgumentError);
    assert.throws(() => pulsar({ partitions: 0 }), InvalidArgumentError);
    assert.throws(() => pulsar({ serviceUrl: 42 as never }), InvalidArgumentError);
    assert.throws(() => pulsar({ token: 7 as never }), InvalidArgumentError);
    assert.throws(() => pulsar({ routing: 'yes' as never }), /routing must be a boolean/);
  });
});
