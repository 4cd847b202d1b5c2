// Native consumer groups on a real Redis: the consumer-group suite (competing consumers, reset,
// a consumer killed mid-batch, dead letters and redrive, poison, undecodable payloads).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import { createEventStore, InvalidArgumentError } from '../../src/index.ts';
import { redis } from '../../src/backends/redis/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { groupEvents, runConsumerGroupSuite, until } from '../conformance/consumer-groups.ts';
import { REDIS_URL } from '../services/env.ts';

/** Per partition, the group's sources: the partition log and the group's redrive stream. */
function sourceKeys(prefix: string, group: string): string[] {
  return [0, 1].flatMap((p) => [`${prefix}:{p${p}}:all`, `${prefix}:{p${p}}:redrive:${group}`]);
}

async function withClient<T>(fn: (client: ReturnType<typeof createClient>) => Promise<T>): Promise<T> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** XINFO GROUPS of a stream, as plain records. */
async function groupsOf(client: ReturnType<typeof createClient>, key: string): Promise<Record<string, unknown>[]> {
  if (!(await client.exists(key))) return [];
  const reply = (await client.sendCommand(['XINFO', 'GROUPS', key])) as unknown[][];
  return reply.map((fields) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i += 2) out[String(fields[i])] = fields[i + 1];
    return out;
  });
}

runConsumerGroupSuite({
  name: 'redis',
  driver: (prefix) => redis({ url: REDIS_URL, prefix, partitions: 2 }),
  worker: `redis:${REDIS_URL}`,
  takeoverMs: 150,
  // Pending (delivered, not acknowledged) plus lag (not yet delivered) of every source stream.
  unacknowledged: (_store, prefix, group) =>
    withClient(async (client) => {
      let total = 0;
      for (const key of sourceKeys(prefix, group)) {
        const g = (await groupsOf(client, key)).find((x) => String(x['name']) === group);
        if (g) total += Number(g['pending'] ?? 0) + Number(g['lag'] ?? 0);
      }
      return total;
    }),
  // The group exists on every partition log (consumers are created on their first read).
  ready: (_store, prefix, group) =>
    until(
      () => withClient(async (client) => {
        for (const p of [0, 1]) if (!(await groupsOf(client, `${prefix}:{p${p}}:all`)).some((x) => String(x['name']) === group)) return false;
        return true;
      }),
      `group ${group} to exist`,
    ),
});

describe('consumer groups without native support', () => {
  it('are refused with a typed error on a backend without native groups', () => {
    const store = createEventStore({ driver: sqlite(), events: groupEvents });
    assert.throws(() => store.consume({ group: 'g', consumer: 'c', handler: () => undefined }), InvalidArgumentError);
    assert.throws(() => store.consume({ group: 'g', consumer: 'c', handler: () => undefined }), /no native consumer groups/);
  });
});
