// Native consumer groups on a real Redis: the consumer-group suite (competing consumers, reset,
// a consumer killed mid-batch, dead letters and redrive, poison, undecodable payloads).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import { createEventStore, InvalidArgumentError, type EventStore } from '../../../src/index.ts';
import { redis, RedisDriver, RedisKeys } from '../../../src/backends/redis/index.ts';
import { sqlite } from '../../../src/backends/sqlite/index.ts';
import { appendMany, groupEvents, runConsumerGroupSuite, until, type GroupEvent } from '../../conformance/consumer-groups.ts';
import { REDIS_URL, uniqueName } from '../../services/env.ts';
import { runtimeOf } from '../../support/runtime.ts';

type Client = ReturnType<typeof createClient>;

/** The key builder of the store's own driver. */
function keysOf(store: EventStore<GroupEvent>): RedisKeys {
  const driver = runtimeOf(store).driver;
  assert.ok(driver instanceof RedisDriver, 'a redis store');
  return driver.keys;
}

/** Per partition, the group's sources: the partition log and the group's redrive stream. */
function sourceKeys(store: EventStore<GroupEvent>, group: string): string[] {
  const keys = keysOf(store);
  return Array.from({ length: store.partitions }, (_, p) => [keys.all(p), keys.redrive(p, group)]).flat();
}

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** XINFO GROUPS of a stream, as plain records. */
async function groupsOf(client: Client, key: string): Promise<Record<string, unknown>[]> {
  if (!(await client.exists(key))) return [];
  const reply = (await client.sendCommand(['XINFO', 'GROUPS', key])) as unknown[][];
  return reply.map((fields) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i += 2) out[String(fields[i])] = fields[i + 1];
    return out;
  });
}

/**
 * Entries of the group not acknowledged: pending (delivered) plus those after the group's last
 * delivered id (not yet delivered), on every source stream. The group must exist on each of
 * them (the driver creates it on both with MKSTREAM), so a wrong key fails here, loudly.
 */
async function unacknowledged(store: EventStore<GroupEvent>, group: string): Promise<number> {
  return withClient(async (client) => {
    let total = 0;
    for (const key of sourceKeys(store, group)) {
      const g = (await groupsOf(client, key)).find((x) => String(x['name']) === group);
      assert.ok(g, `group ${group} exists on ${key}`);
      const undelivered = (await client.sendCommand(['XRANGE', key, `(${String(g['last-delivered-id'])}`, '+'])) as unknown[];
      total += Number(g['pending']) + undelivered.length;
    }
    return total;
  });
}

/** Deletes every key of the prefixes. */
async function dropPrefixes(prefixes: readonly string[]): Promise<void> {
  await withClient(async (client) => {
    for (const prefix of prefixes) {
      for await (const keys of client.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 500 })) {
        if (keys.length > 0) await client.unlink(keys);
      }
    }
  });
}

runConsumerGroupSuite({
  name: 'redis',
  driver: (prefix) => redis({ url: REDIS_URL, prefix, partitions: 2 }),
  cleanup: dropPrefixes,
  worker: `redis:${REDIS_URL}`,
  takeoverMs: 150,
  unacknowledged: (store, _prefix, group) => unacknowledged(store, group),
  // The group exists on every partition log (consumers are created on their first read).
  ready: (store, _prefix, group) =>
    until(
      () =>
        withClient(async (client) => {
          const keys = keysOf(store);
          for (let p = 0; p < store.partitions; p++) {
            if (!(await groupsOf(client, keys.all(p))).some((x) => String(x['name']) === group)) return false;
          }
          return true;
        }),
      `group ${group} to exist`,
    ),
});

describe('redis consumer groups: redriven dead letters', () => {
  it('count as unacknowledged from the redrive until the group acknowledges them', async () => {
    const prefix = uniqueName('cg-rd');
    const store = createEventStore({ driver: redis({ url: REDIS_URL, prefix, partitions: 2 }), events: groupEvents });
    try {
      await appendMany(store, 4);
      let broken = true;
      const handled: number[] = [];
      const consume = () =>
        store.consume({
          group: 'g',
          consumer: 'c',
          retries: 0,
          blockMs: 50,
          handler: (e) => {
            if (broken && e.data.amount === 2) throw new Error('down');
            handled.push(e.data.amount);
          },
        });
      const first = consume();
      await until(() => first.handled === 3 && first.deadLettered === 1, 'three handled, one dead-lettered');
      await first.stop();
      assert.equal(await unacknowledged(store, 'g'), 0, 'the dead letter was acknowledged in the log');

      assert.equal(await store.deadLetters('g').redrive(), 1);
      assert.equal(await unacknowledged(store, 'g'), 1, 'the redriven entry waits in the redrive stream, undelivered');

      broken = false;
      const second = consume();
      await until(() => handled.includes(2), 'the redriven event to be handled');
      await until(async () => (await unacknowledged(store, 'g')) === 0, 'the redriven entry to be acknowledged');
      await second.stop();
      assert.deepEqual(
        handled.sort((a, b) => a - b),
        [1, 2, 3, 4],
      );
    } finally {
      await store.close();
      await dropPrefixes([prefix]);
    }
  });
});

describe('consumer groups without native support', () => {
  it('are refused with a typed error on a backend without native groups', () => {
    const store = createEventStore({ driver: sqlite(), events: groupEvents });
    assert.throws(() => store.consume({ group: 'g', consumer: 'c', handler: () => undefined }), InvalidArgumentError);
    assert.throws(() => store.consume({ group: 'g', consumer: 'c', handler: () => undefined }), /no native consumer groups/);
  });
});
