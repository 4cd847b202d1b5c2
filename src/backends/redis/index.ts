// `eventfold/redis`: Redis Streams on node-redis (`redis`, an optional peer dependency).
import { keySlot, RedisKeys } from './keys.ts';
import { RedisDriver, type RedisDriverOptions } from './redis-driver.ts';

export { keySlot, RedisDriver, RedisKeys };
export type { RedisDriverOptions };

/** `redis({ url: 'redis://127.0.0.1:6379' })`, or `redis({ cluster: { rootNodes: [...] } })`. */
export function redis(options: RedisDriverOptions = {}): RedisDriver {
  return new RedisDriver(options);
}
