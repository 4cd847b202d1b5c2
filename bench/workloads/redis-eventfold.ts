// eventfold's Redis Streams driver against the services' Redis: one Lua script per append
// (version check, duplicate-id check, XADD to the aggregate's stream and to its partition log,
// id index), 16 partitions, and its default durability (no WAITAOF: the server's AOF policy).
import { redis } from '../../src/backends/redis/index.ts';
import type { BenchTarget } from '../target.ts';
import { eventfoldTarget } from './eventfold.ts';
import { deletePrefix, prefixFor, redisUrl } from './redis-common.ts';

export const PARTITIONS = 16;

export function eventfoldRedis(): BenchTarget {
  return eventfoldTarget({
    driver: (dir) => redis({ url: redisUrl(), prefix: prefixFor(dir, 'ef'), partitions: PARTITIONS }),
    notes: [
      `eventfold: \`redis({ url, prefix, partitions: ${PARTITIONS} })\` (node-redis 5, one connection; waitForAof off, the default); each append is one EVALSHA of its append script: expected-version check, duplicate-id check over the events' ids, XADD to the aggregate stream and to the partition log, HSET into the id index`,
      'eventfold: each stored entry carries id, type, schema version, codec, payload, metadata, time (and the log position or stream/version), so it writes more bytes per event than raw, and twice (stream + log)',
    ],
    cleanup: async (dir) => void (await deletePrefix(dir)),
  });
}
