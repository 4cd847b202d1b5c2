import type { RedisDriverOptions } from '../backends/redis/redis-driver.ts';
import { InvalidConnectionUrlError } from '../core/errors.ts';
import type { ConnectionUrl } from './connection-url.ts';
import { readParams } from './params.ts';

export const REDIS_PARAMS = {
  prefix: 'string',
  partitions: 'positiveInt',
  idWindow: 'positiveInt',
  blockMs: 'nonNegativeInt',
  cluster: 'boolean',
} as const;

/**
 * `redis://[user[:password]@]host[:port][/db]?prefix=…&partitions=…`, `rediss://` for TLS;
 * several hosts (`redis://h1:7001,h2:7002`) or `cluster=true` connect to a Redis Cluster
 * through those root nodes. Without a password in the URL, `EVENTFOLD_REDIS_PASSWORD` (and
 * `EVENTFOLD_REDIS_USERNAME`) of `env` are used. Credentials go to node-redis as options, never
 * inside a URL, so no message built from one can show them.
 */
export function redisOptions(url: ConnectionUrl, env: Readonly<Record<string, string | undefined>>): RedisDriverOptions {
  const params = readParams(url, 'redis', REDIS_PARAMS);
  const hosts = url.hosts.length === 0 ? ['127.0.0.1:6379'] : url.hosts;
  const username = url.username ?? nonEmpty(env['EVENTFOLD_REDIS_USERNAME']);
  const password = url.password ?? nonEmpty(env['EVENTFOLD_REDIS_PASSWORD']);
  const credentials = { ...(username === undefined ? {} : { username }), ...(password === undefined ? {} : { password }) };
  const tls = url.scheme === 'rediss';
  const common = {
    ...(params.prefix === undefined ? {} : { prefix: params.prefix }),
    ...(params.partitions === undefined ? {} : { partitions: params.partitions }),
    ...(params.idWindow === undefined ? {} : { idWindow: params.idWindow }),
    ...(params.blockMs === undefined ? {} : { blockMs: params.blockMs }),
  };
  if (params.cluster === true || hosts.length > 1) {
    if (url.path !== '') throw new InvalidConnectionUrlError(`redis cluster URL ${url.redacted} cannot select a database (/${url.path})`);
    return {
      ...common,
      cluster: {
        rootNodes: hosts.map((h) => ({ url: `${url.scheme}://${h}` })),
        defaults: { ...credentials, ...(tls ? { socket: { tls: true } } : {}) },
      },
    };
  }
  if (url.path !== '' && !/^\d+$/.test(url.path)) {
    throw new InvalidConnectionUrlError(`redis URL ${url.redacted} has the path /${url.path}; only a database number may follow the host`);
  }
  return {
    ...common,
    url: `${url.scheme}://${hosts[0]}${url.path === '' ? '' : `/${url.path}`}`,
    ...(username === undefined && password === undefined ? {} : { client: credentials }),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
