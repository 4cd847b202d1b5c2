import type { EventStoreDriver } from '../core/driver.ts';
import type { ConnectionUrl } from './connection-url.ts';
import { kafkaOptions } from './kafka-url.ts';
import { postgresOptions } from './postgres-url.ts';
import { pulsarOptions } from './pulsar-url.ts';
import { redisOptions } from './redis-url.ts';
import { sqliteOptions } from './sqlite-url.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** How a connection URL becomes a driver of one backend. */
export interface BackendEntry {
  /** URL schemes that name the backend (lower case, without the colon). */
  readonly schemes: readonly string[];
  /** The npm package (an optional peer dependency) the backend's module imports, if any. */
  readonly peer?: string;
  /**
   * Checks the URL and builds the driver. The backend's module is imported only here (a
   * dynamic import of its index), so `eventfold` itself never loads a client it does not need.
   * Absent: the backend is not in this version of eventfold.
   */
  readonly create?: (url: ConnectionUrl, env: Env) => Promise<EventStoreDriver>;
}

/**
 * Every backend a URL can name. Adding one is one entry: its schemes, its peer package, and
 * `create` — check the URL into the factory's options (before importing anything, so a bad URL
 * is reported even where the client is missing), then import the backend index and call it.
 */
export const BACKENDS = {
  sqlite: {
    schemes: ['sqlite'],
    create: async (url) => {
      const options = sqliteOptions(url);
      return (await import('../backends/sqlite/index.ts')).sqlite(options);
    },
  },
  redis: {
    schemes: ['redis', 'rediss'],
    peer: 'redis',
    create: async (url, env) => {
      const options = redisOptions(url, env);
      return (await import('../backends/redis/index.ts')).redis(options);
    },
  },
  kafka: {
    schemes: ['kafka', 'kafkas'],
    peer: '@platformatic/kafka',
    create: async (url, env) => {
      const options = kafkaOptions(url, env);
      return (await import('../backends/kafka/index.ts')).kafka(options);
    },
  },
  pulsar: {
    schemes: ['pulsar', 'pulsar+ssl'],
    create: async (url, env) => {
      const options = pulsarOptions(url, env);
      return (await import('../backends/pulsar/index.ts')).pulsar(options);
    },
  },
  postgres: {
    schemes: ['postgres', 'postgresql'],
    peer: 'pg',
    create: async (url, env) => {
      const options = postgresOptions(url, env);
      return (await import('../backends/postgres/index.ts')).postgres(options);
    },
  },
} satisfies Record<string, BackendEntry>;

export type BackendName = keyof typeof BACKENDS;

/** The backend of a scheme, or undefined. */
export function backendOf(scheme: string): { name: BackendName; entry: BackendEntry } | undefined {
  for (const [name, entry] of Object.entries(BACKENDS) as [BackendName, BackendEntry][]) {
    if (entry.schemes.includes(scheme)) return { name, entry };
  }
  return undefined;
}
