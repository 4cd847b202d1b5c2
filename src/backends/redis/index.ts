// `eventfold/redis`: Redis Streams on node-redis (`redis`, an optional peer dependency).
import { arg } from '../../core/arguments.ts';
import { keySlot, RedisKeys } from './keys.ts';
import { RedisDriver, type RedisDriverOptions } from './redis-driver.ts';

export { keySlot, RedisDriver, RedisKeys };
export type { RedisDriverOptions };

/** `redis({ url: 'redis://127.0.0.1:6379' })`, or `redis({ cluster: { rootNodes: [...] } })`. */
export function redis(options?: RedisDriverOptions): RedisDriver {
  const o = arg.options(options, 'redis options');
  arg.optional(o.url, (u) => arg.string(u, 'url'));
  arg.optional(o.client, (c) => arg.object(c, 'client'));
  arg.optional(o.cluster, (c) => arg.object(c, 'cluster'));
  arg.optional(o.partitions, (n) => arg.positiveInt(n, 'partitions'));
  arg.optional(o.prefix, (p) => arg.string(p, 'prefix'));
  arg.optional(o.waitForAof, (w) => arg.object(w, 'waitForAof'));
  arg.optional(o.blockMs, (ms) => arg.nonNegative(ms, 'blockMs'));
  arg.optional(o.idWindow, (n) => arg.positiveInt(n, 'idWindow'));
  return new RedisDriver(o);
}
