// What both Redis targets share: the server URL, a preflight that fails loudly, the key prefix
// of a target's round (unique, kept in the target's bench directory so the memory probe's child process
// finds the same keys) and the clean-up of every key under it.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import type { BenchTarget } from '../target.ts';

/** `--redis-url` sets it; child processes inherit it. */
export const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A client that gives up instead of reconnecting forever: the bench must fail, not hang. */
export async function connectOnce(url = redisUrl()) {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 3000 } });
  client.on('error', () => undefined); // surfaced by connect() and by the commands
  await client.connect();
  return client;
}

export async function preflightRedis(): Promise<void> {
  const url = redisUrl();
  try {
    const client = await connectOnce(url);
    try {
      const pong = await client.ping();
      if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
    } finally {
      await client.close();
    }
  } catch (error) {
    const why = error instanceof Error ? error.message || error.name : String(error);
    throw new Error(
      `redis suite: cannot use Redis at ${url} (${why}). Start the local one with \`scripts/services up redis\`, ` +
        'or point `--redis-url` (or REDIS_URL) at a running server; `--suite sqlite` runs without Redis.',
    );
  }
}

/** Server version and durability settings, printed under the table. */
export async function describeRedis(): Promise<string> {
  const client = await connectOnce();
  try {
    const info = await client.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    const config = await client.configGet(['appendonly', 'appendfsync', 'save']);
    const save = config.save ? `RDB save "${config.save}"` : 'no RDB save';
    return (
      `Redis ${version} at ${redisUrl()}, appendonly=${config.appendonly ?? '?'}, appendfsync=${config.appendfsync ?? '?'}, ${save}; ` +
      'both targets talk to this one server, in the same run, in interleaved rounds, each target under a key prefix of its own every round'
    );
  } finally {
    await client.close();
  }
}

/**
 * The key prefix of the store kept in `dir`: made up on first use (unique per run, round and target),
 * then read back, so reopening the same dir sees the same keys.
 */
export function prefixFor(dir: string, kind: 'ef' | 'raw'): string {
  const file = join(dir, 'redis-prefix');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const prefix = `efbench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-${kind}`;
  writeFileSync(file, `${prefix}\n`);
  return prefix;
}

/** Deletes every key of the prefix (SCAN MATCH + UNLINK); returns how many. */
export async function deletePrefix(dir: string): Promise<number> {
  const file = join(dir, 'redis-prefix');
  if (!existsSync(file)) return 0;
  const prefix = readFileSync(file, 'utf8').trim();
  if (!/^efbench-[a-z0-9]+-[0-9a-f]{6}-(ef|raw)$/.test(prefix))
    throw new Error(`refusing to delete keys of unexpected prefix ${JSON.stringify(prefix)}`);
  const client = await connectOnce();
  let deleted = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      if (keys.length > 0) deleted += await client.unlink(keys);
    }
  } finally {
    await client.close();
  }
  return deleted;
}

/**
 * Wraps a Redis target so its notes say how often the server forked (an RDB save or an AOF
 * rewrite, which the services' config allows at any time) between its open and its close.
 */
export function countingForks(target: BenchTarget): BenchTarget {
  let before: number | undefined;
  let forks: number | undefined;
  const totalForks = async (): Promise<number> => {
    const client = await connectOnce();
    try {
      return Number(/total_forks:(\d+)/.exec(await client.info('stats'))?.[1] ?? NaN);
    } finally {
      await client.close();
    }
  };
  return {
    ...target,
    get notes() {
      const count = forks === undefined ? 'an unknown number of' : String(forks);
      return [...target.notes, `${target.name}: the Redis server forked ${count} time(s) (RDB save or AOF rewrite) while this target ran`];
    },
    async open(dir) {
      before = await totalForks();
      await target.open(dir);
    },
    async close() {
      await target.close();
      if (before !== undefined) forks = (await totalForks()) - before;
      before = undefined;
    },
  };
}
