import type { PostgresDriverOptions } from '../backends/postgres/postgres-driver.ts';
import { InvalidConnectionUrlError } from '../core/errors.ts';
import type { ConnectionUrl } from './connection-url.ts';
import { readParams } from './params.ts';

export const POSTGRES_PARAMS = {
  schema: 'string',
  stableReadWaitMs: 'nonNegativeInt',
  pollMs: 'positiveInt',
  ssl: 'boolean',
  max: 'positiveInt',
} as const;

/**
 * `postgres://[user[:password]@]host[:port]/database?schema=billing&ssl=true` (or
 * `postgresql://`). Without a user or password in the URL, `EVENTFOLD_POSTGRES_USERNAME` and
 * `EVENTFOLD_POSTGRES_PASSWORD` of `env` are used, else node-postgres's own `PG*` variables.
 * Credentials go to node-postgres as pool options, never inside a connection string, so no
 * message built from one can show them. `max` is the pool's size.
 */
export function postgresOptions(url: ConnectionUrl, env: Readonly<Record<string, string | undefined>>): PostgresDriverOptions {
  const params = readParams(url, 'postgres', POSTGRES_PARAMS);
  if (url.hosts.length > 1) throw new InvalidConnectionUrlError(`postgres URL ${url.redacted} names ${url.hosts.length} hosts; name one`);
  if (url.path.includes('/'))
    throw new InvalidConnectionUrlError(`postgres URL ${url.redacted}: the path is the database name, one segment`);
  const match = /^(.*?)(?::(\d+))?$/.exec(url.hosts[0] ?? '')!;
  const user = url.username ?? nonEmpty(env['EVENTFOLD_POSTGRES_USERNAME']);
  const password = url.password ?? nonEmpty(env['EVENTFOLD_POSTGRES_PASSWORD']);
  const pool = {
    ...(match[1] ? { host: match[1] } : {}),
    ...(match[2] === undefined ? {} : { port: Number(match[2]) }),
    ...(url.path === '' ? {} : { database: url.path }),
    ...(user === undefined ? {} : { user }),
    ...(password === undefined ? {} : { password }),
    ...(params.ssl === true ? { ssl: true } : {}),
    ...(params.max === undefined ? {} : { max: params.max }),
  };
  return {
    pool,
    ...(params.schema === undefined ? {} : { schema: params.schema }),
    ...(params.stableReadWaitMs === undefined ? {} : { stableReadWaitMs: params.stableReadWaitMs }),
    ...(params.pollMs === undefined ? {} : { pollMs: params.pollMs }),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
