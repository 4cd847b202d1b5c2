// Tenancy on the real standalone: namespace policies provisioned on open (read back through
// admin REST; reopening writes nothing, changed policies are written), the dead letters' TTL
// (never on events), isolation between tenants, hostile names and bad policies refused before
// any network call, and readSince through the time index (publish times).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createEventStore, DriverError, InvalidArgumentError } from '../../../src/index.ts';
import { pulsar, type PulsarDriverOptions } from '../../../src/backends/pulsar/index.ts';
import type { PulsarPolicies } from '../../../src/backends/pulsar/policies.ts';
import { accountEvents, Deposited } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { admin, dropNamespace } from './support.ts';

const MB = 1024 * 1024;
const made: { tenant: string; namespace: string }[] = [];
const tenants = new Set<string>();
after(async () => {
  for (const { tenant, namespace } of made) await dropNamespace(tenant, namespace);
  for (const tenant of tenants) {
    const gone = await admin('DELETE', `tenants/${tenant}`);
    assert.ok(gone.ok || gone.status === 404, `deleting tenant ${tenant} answered ${gone.status}`);
  }
});

const tenant = uniqueName('tenancy');

function driverFor(options: PulsarDriverOptions & { tenant: string; namespace: string }) {
  if (!made.some((m) => m.tenant === options.tenant && m.namespace === options.namespace)) made.push(options);
  tenants.add(options.tenant);
  return pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, partitions: 3, prefix: 'shop', ...options });
}

function open(options: PulsarDriverOptions & { tenant: string; namespace: string }, clock?: () => number) {
  const driver = driverFor(options);
  return { driver, store: createEventStore({ driver, events: accountEvents, ...(clock ? { clock } : {}) }) };
}

async function json(path: string): Promise<unknown> {
  const res = await admin('GET', path);
  assert.ok(res.ok, `GET ${path} answered ${res.status}: ${await res.clone().text()}`);
  const text = await res.text();
  return text === '' ? undefined : JSON.parse(text);
}

/** Runs `fn` counting the admin calls that go to `match`, and the writes among them the broker took (2xx: a 409 "exists" changes nothing). */
async function counting<T>(match: string, fn: () => Promise<T>): Promise<{ result: T; calls: number; writes: string[] }> {
  const original = globalThis.fetch;
  let calls = 0;
  const writes: string[] = [];
  globalThis.fetch = async (input, init) => {
    const res = await original(input, init);
    const url = String(input);
    if (url.includes(match)) {
      calls++;
      const method = init?.method ?? 'GET';
      if (method !== 'GET' && res.ok) writes.push(`${method} ${decodeURIComponent(new URL(url).pathname + new URL(url).search)}`);
    }
    return res;
  };
  try {
    return { result: await fn(), calls, writes };
  } finally {
    globalThis.fetch = original;
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const rest = (topic: string) => `persistent/${topic.slice('persistent://'.length)}`;

describe('pulsar tenancy and policies', () => {
  it('provisions the asked policies (read back through REST); reopening writes nothing; changed policies are written', async () => {
    const namespace = uniqueName('ns-policies');
    const ns = `${tenant}/${namespace}`;
    const policies = {
      retention: { minutes: 7 * 24 * 60, megabytes: 10 * 1024 },
      offloadThreshold: { megabytes: 1024 },
      backlogQuota: { megabytes: 512, policy: 'producer_request_hold' },
      deduplication: true,
    } as const satisfies PulsarPolicies;
    const first = open({ tenant, namespace, policies });
    await first.store.append('account-1', Deposited({ amount: 1 }));
    await first.store.close();
    assert.deepEqual(await json(`namespaces/${ns}/retention`), {
      retentionTimeInMinutes: policies.retention.minutes,
      retentionSizeInMB: policies.retention.megabytes,
    });
    assert.equal(await json(`namespaces/${ns}/offloadThreshold`), policies.offloadThreshold.megabytes * MB);
    const quota = ((await json(`namespaces/${ns}/backlogQuotaMap`)) as Record<string, { limitSize: number; policy: string }>)
      .destination_storage;
    assert.equal(quota?.limitSize, policies.backlogQuota.megabytes * MB);
    assert.equal(quota?.policy, policies.backlogQuota.policy);
    assert.equal(await json(`namespaces/${ns}/deduplication`), true);

    // The same policies again: the namespace is read, nothing is written.
    const same = open({ tenant, namespace, policies });
    const reopened = await counting(`/${ns}`, () => same.store.streamVersion('account-1'));
    assert.equal(reopened.result, 1);
    assert.ok(reopened.calls > 0, 'the open went through admin REST');
    assert.deepEqual(reopened.writes, []);
    await same.store.close();

    // Changed: retention by time only, no backlog quota. Only those two are written.
    const changed = { ...policies, retention: { minutes: 60 }, backlogQuota: 'none' } as const satisfies PulsarPolicies;
    const next = open({ tenant, namespace, policies: changed });
    const update = await counting(`/${ns}`, () => next.store.streamVersion('account-1'));
    await next.store.close();
    assert.equal(update.writes.length, 2, update.writes.join(', '));
    assert.ok(
      update.writes.some((w) => w.startsWith('DELETE') && w.includes('/backlogQuota')),
      update.writes.join(', '),
    );
    assert.ok(
      update.writes.some((w) => w.startsWith('POST') && w.endsWith('/retention')),
      update.writes.join(', '),
    );
    assert.deepEqual(await json(`namespaces/${ns}/retention`), { retentionTimeInMinutes: 60, retentionSizeInMB: -1 });
    assert.deepEqual(await json(`namespaces/${ns}/backlogQuotaMap`), {});
    assert.equal(await json(`namespaces/${ns}/offloadThreshold`), policies.offloadThreshold.megabytes * MB, 'untouched');

    // No policies (a CLI opening the store by URL): the retention someone set is left alone.
    const plain = open({ tenant, namespace });
    const untouched = await counting(`/${ns}`, () => plain.store.streamVersion('account-1'));
    await plain.store.close();
    assert.deepEqual(untouched.writes, []);
  });

  it('puts the dead letters TTL on each group dead-letter topic only, never on the events', async () => {
    const namespace = uniqueName('ns-dlq');
    const policies = { deadLetterTtlSeconds: 90 } as const;
    const { driver, store } = open({ tenant, namespace, policies });
    await store.append('account-1', Deposited({ amount: 1 }));
    const handled: string[] = [];
    const consumer = store.consume({
      group: 'billing',
      consumer: 'c1',
      retries: 0,
      retryDelayMs: 1,
      handler: (e) => {
        handled.push(e.id);
        throw new Error('poison');
      },
    });
    const deadline = Date.now() + 60_000;
    let letters = await store.deadLetters('billing').list();
    while (letters.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      letters = await store.deadLetters('billing').list();
    }
    await consumer.stop();
    assert.equal(letters.length, 1, 'the failing event went to the dead letters');
    const dlq = rest(driver.names.deadLetters('billing'));
    assert.equal(await json(`${dlq}/messageTTL`), policies.deadLetterTtlSeconds);
    assert.deepEqual(await json(`${dlq}/retention`), {
      retentionTimeInMinutes: Math.ceil(policies.deadLetterTtlSeconds / 60),
      retentionSizeInMB: -1,
    });
    // The events, the redrive topic and the state topic: no TTL at any level, infinite retention.
    for (const topic of [driver.names.events, driver.names.redrive('billing'), driver.names.state]) {
      assert.equal(await json(`${rest(topic)}/messageTTL?applied=true`), 0, `${topic} has no TTL`);
      assert.deepEqual(await json(`${rest(topic)}/retention?applied=true`), { retentionTimeInMinutes: -1, retentionSizeInMB: -1 });
    }
    assert.equal(await json(`namespaces/${tenant}/${namespace}/messageTTL`), undefined, 'no namespace TTL');
    await store.close();

    // Another process using the group: the TTL is read back, not written again.
    const again = open({ tenant, namespace, policies });
    const reread = await counting(`/${tenant}/${namespace}`, () => again.store.deadLetters('billing').list());
    assert.equal(reread.result.length, 1);
    assert.deepEqual(reread.writes, []);
    // A changed TTL is written.
    await again.store.close();
    const longer = open({ tenant, namespace, policies: { deadLetterTtlSeconds: 7200 } });
    await longer.store.deadLetters('billing').list();
    await longer.store.close();
    assert.equal(await json(`${dlq}/messageTTL`), 7200);
    assert.deepEqual(await json(`${dlq}/retention`), { retentionTimeInMinutes: 120, retentionSizeInMB: -1 });
  });

  it('refuses a namespace with a message TTL, and names the policy the broker refuses', async () => {
    const namespace = uniqueName('ns-ttl');
    tenants.add(tenant);
    const { store } = open({ tenant, namespace });
    await store.streamVersion('account-1');
    await store.close();
    const set = await admin('POST', `namespaces/${tenant}/${namespace}/messageTTL`, 60);
    assert.ok(set.ok, `setting a namespace TTL answered ${set.status}`);
    const reopened = open({ tenant, namespace });
    await assert.rejects(reopened.store.streamVersion('account-1'), (e: unknown) => {
      assert.ok(e instanceof DriverError, String(e));
      assert.match(e.message, /message TTL of 60 s/);
      return true;
    });
    await reopened.store.close();

    // The broker wants the retention above the backlog quota: its refusal names the policy.
    const refused = open({
      tenant,
      namespace: uniqueName('ns-refused'),
      policies: { retention: { megabytes: 1 }, backlogQuota: { megabytes: 10, policy: 'producer_exception' } },
    });
    await assert.rejects(refused.store.streamVersion('account-1'), (e: unknown) => {
      assert.ok(e instanceof DriverError, String(e));
      assert.match(e.message, /policy backlogQuota on namespace .*refused it \(4\d\d\): .*retention/i);
      return true;
    });
    await refused.store.close();
  });

  it('refuses bad policies and hostile names with InvalidArgumentError before any network call', async () => {
    const bad: [string, unknown][] = [
      ['policies', 'strict'],
      ['policies', { ttl: 5 }],
      ['retention', 'forever'],
      ['retention', {}],
      ['retention', { minutes: 0 }],
      ['retention', { minutes: 1.5 }],
      ['retention', { megabytes: -1 }],
      ['retention', { minutes: 1, days: 2 }],
      ['offloadThreshold', { megabytes: -1 }],
      ['offloadThreshold', { bytes: 5 }],
      ['backlogQuota', { megabytes: 1, policy: 'consumer_backlog_eviction' }],
      ['backlogQuota', { megabytes: 0, policy: 'producer_exception' }],
      ['backlogQuota', { megabytes: 1 }],
      ['deduplication', false],
      ['deadLetterTtlSeconds', 0],
      ['deadLetterTtlSeconds', -5],
      ['deadLetterTtlSeconds', 1.5],
      ['deadLetterTtlSeconds', '60'],
    ];
    const hostile = ['a/b', '..', '.', '%2F', '', ' ', 'a b', 'a?b', 'a#b', 'é', 'x'.repeat(101)];
    const { calls } = await counting(PULSAR_URL, async () => {
      for (const [key, value] of bad) {
        const policies = key === 'policies' ? value : { [key]: value };
        assert.throws(
          () => pulsar({ adminUrl: PULSAR_URL, policies: policies as never }),
          (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(key),
          `${key}: ${JSON.stringify(value)}`,
        );
      }
      assert.throws(() => pulsar({ policies: { deduplication: false as never } }), /relies on it/);
      for (const name of hostile) {
        for (const what of ['tenant', 'namespace', 'prefix'] as const) {
          assert.throws(() => pulsar({ adminUrl: PULSAR_URL, [what]: name }), InvalidArgumentError, `${what} ${JSON.stringify(name)}`);
        }
      }
    });
    assert.equal(calls, 0);
    // The longest accepted names, and policies at their limits, make a driver.
    assert.ok(pulsar({ tenant: 'x'.repeat(100), namespace: 'a.b=c:d_e-f', policies: { offloadThreshold: { megabytes: 0 } } }));
  });

  it('two stores in different tenants with the same namespace, prefix and streams see nothing of each other', async () => {
    const namespace = 'orders';
    const stores = [uniqueName('tenant-a'), uniqueName('tenant-b')].map((t) => ({ t, ...open({ tenant: t, namespace }) }));
    const [a, b] = stores as [(typeof stores)[0], (typeof stores)[0]];
    await a.store.append('account-1', [Deposited({ amount: 1 }), Deposited({ amount: 2 })]);
    await b.store.append('account-1', Deposited({ amount: 100 }));
    await b.store.append('account-2', Deposited({ amount: 200 }));
    const data = (events: readonly { data: unknown }[]) => events.map((e) => (e.data as { amount: number }).amount);
    assert.deepEqual(data(await collect(a.store.readStream('account-1'))), [1, 2]);
    assert.deepEqual(data(await collect(b.store.readStream('account-1'))), [100]);
    assert.equal(await a.store.streamVersion('account-2'), 0);
    assert.deepEqual(
      data(await collect(a.store.readAll())).sort((x, y) => x - y),
      [1, 2],
    );
    assert.deepEqual(
      data(await collect(b.store.readAll())).sort((x, y) => x - y),
      [100, 200],
    );
    for (const { t, store, driver } of stores) {
      // The same group name in both tenants: positions, deliveries and dead letters apart.
      const seen: number[] = [];
      const sub = store.subscribe({ group: 'projection', handler: (e) => void seen.push((e.data as { amount: number }).amount) });
      await sub.caughtUp();
      await sub.stop();
      const consumed: number[] = [];
      const consumer = store.consume({
        group: 'mailer',
        consumer: 'm1',
        retries: 0,
        handler: (e) => void consumed.push((e.data as { amount: number }).amount),
      });
      const deadline = Date.now() + 60_000;
      while (consumed.length < seen.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await consumer.stop();
      const expected = t === a.t ? [1, 2] : [100, 200];
      assert.deepEqual(
        seen.sort((x, y) => x - y),
        expected,
        `subscription in ${t}`,
      );
      assert.deepEqual(
        consumed.sort((x, y) => x - y),
        expected,
        `consumer group in ${t}`,
      );
      assert.ok(driver.names.events.startsWith(`persistent://${t}/${namespace}/`));
      const topics = (await json(`namespaces/${t}/${namespace}/topics`)) as string[];
      assert.ok(topics.length > 0 && topics.every((topic) => topic.startsWith(`persistent://${t}/${namespace}/`)), topics.join(', '));
      await store.close();
    }
  });

  it('readSince finds the first event at or after a time on every partition through the publish times', async () => {
    const namespace = uniqueName('ns-since');
    // Event times a day ago: the index is the events' times, not the broker's clock.
    const base = Date.now() - 86_400_000;
    let now = base;
    const { driver, store } = open({ tenant, namespace }, () => now);
    assert.equal(driver.capabilities.timeIndex, true);
    for (let i = 1; i <= 12; i++) {
      now = base + i * 1000;
      await store.append(`account-${i % 6}`, Deposited({ amount: i }));
    }
    // The clock goes back: the commit's publish time stays at the partition's latest.
    now = base + 5500;
    await store.append('account-1', Deposited({ amount: 13 }));
    const all = await collect(store.readAll());
    assert.equal(all.length, 13);
    const partitions = new Set(all.map((e) => e.position.partition));
    assert.ok(partitions.size >= 2, 'the streams span partitions');
    for (const t of [base, base + 1, base + 4000, base + 5500, base + 6000, base + 9999, base + 12_000, base + 12_001]) {
      const since = await collect(store.readSince(new Date(t)));
      const expected = all.filter((e) => e.time.getTime() >= t).map((e) => e.id);
      assert.deepEqual(since.map((e) => e.id).sort(), expected.sort(), `readSince(base + ${t - base})`);
      for (const p of partitions) {
        // Exact: the first event whose time or any earlier one's on the partition reaches t.
        let latest = Number.NEGATIVE_INFINITY;
        const first = all
          .filter((e) => e.position.partition === p)
          .find((e) => {
            latest = Math.max(latest, e.time.getTime());
            return latest >= t;
          });
        assert.equal(await driver.firstOffsetAtTime(p, t), first?.position.offset, `partition ${p}, base + ${t - base}`);
      }
    }
    await store.close();
  });
});
