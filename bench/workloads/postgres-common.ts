// What the PostgreSQL targets share: the server URL, a preflight that fails loudly, the schema
// of a target's round (unique, kept in the target's bench directory so the memory probe's child
// process finds the same tables) and dropping it after the round.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

/** `--postgres-url` sets it; child processes inherit it. */
export const postgresUrl = (): string => process.env.EVENTFOLD_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/eventfold';

/** Runs `fn` on a fresh client that gives up after 3 s instead of hanging. */
export async function withClient<T>(fn: (client: pg.Client) => Promise<T>, url = postgresUrl()): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined); // surfaced by connect() and by the queries
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function preflightPostgres(): Promise<void> {
  const url = postgresUrl();
  try {
    await withClient(async (c) => void (await c.query('SELECT 1')), url);
  } catch (error) {
    const why = error instanceof Error ? error.message || error.name : String(error);
    throw new Error(
      `postgres suite: cannot use PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} (${why}). Start the local one with \`scripts/services up postgres\`, ` +
        'or point `--postgres-url` (or EVENTFOLD_POSTGRES_URL) at a running server; `--suite sqlite` runs without a server.',
    );
  }
}

/** Server version and durability settings, printed under the table. */
export async function describePostgres(): Promise<string> {
  return withClient(async (c) => {
    const setting = async (name: string): Promise<string> =>
      (await c.query<{ setting: string }>('SELECT setting FROM pg_settings WHERE name = $1', [name])).rows[0]?.setting ?? '?';
    const version = (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
    return (
      `PostgreSQL ${version} at ${new URL(postgresUrl()).host}, fsync=${await setting('fsync')}, synchronous_commit=${await setting('synchronous_commit')}, ` +
      `wal_sync_method=${await setting('wal_sync_method')}; every target talks to this one server, in the same run, in interleaved rounds, ` +
      'each in a schema of its own every round (created on open, dropped after its round)'
    );
  });
}

const SCHEMA = /^efbench_[a-z0-9]+_[0-9a-f]{6}_[a-z]+$/;

/**
 * The schema of the store kept in `dir`: made up on first use (unique per run, round and target),
 * then read back, so reopening the same dir sees the same tables.
 */
export function schemaFor(dir: string, kind: string): string {
  const file = join(dir, 'postgres-schema');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const schema = `efbench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}_${kind}`;
  if (!SCHEMA.test(schema)) throw new Error(`bad bench schema name ${schema}`);
  writeFileSync(file, `${schema}\n`);
  return schema;
}

/** Drops the schema of `dir`'s store with everything in it; false when there was none. */
export async function dropSchema(dir: string): Promise<boolean> {
  const file = join(dir, 'postgres-schema');
  if (!existsSync(file)) return false;
  const schema = readFileSync(file, 'utf8').trim();
  if (!SCHEMA.test(schema)) throw new Error(`refusing to drop unexpected schema ${JSON.stringify(schema)}`);
  await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  return true;
}

/** `url` with `search_path` set to `schema` for every connection (libpq `options`), for clients that name tables unqualified. */
export function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}
