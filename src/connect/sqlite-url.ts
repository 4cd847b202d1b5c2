import type { SqliteDriverOptions } from '../backends/sqlite/sqlite-driver.ts';
import type { ConnectionUrl } from './connection-url.ts';
import { readParams } from './params.ts';

export const SQLITE_PARAMS = { synchronous: ['full', 'normal'], busyTimeoutMs: 'nonNegativeInt' } as const;

/**
 * `sqlite:./events.db`, `sqlite:/var/data/events.db`, `sqlite:///var/data/events.db`,
 * `sqlite::memory:` (also `sqlite:` alone), each with `?synchronous=normal&busyTimeoutMs=…`.
 */
export function sqliteOptions(url: ConnectionUrl): SqliteDriverOptions {
  const params = readParams(url, 'sqlite', SQLITE_PARAMS);
  const path = url.path;
  return {
    path: path === '' ? ':memory:' : path,
    ...(params.synchronous === undefined ? {} : { synchronous: params.synchronous }),
    ...(params.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: params.busyTimeoutMs }),
  };
}
