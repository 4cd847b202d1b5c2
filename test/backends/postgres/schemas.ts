// Drops the schemas the PostgreSQL tests created (names from the driver's own builder).
import pg from 'pg';
import { PostgresNames } from '../../../src/backends/postgres/index.ts';
import { POSTGRES_URL } from '../../services/env.ts';

export async function dropSchemas(schemas: Iterable<string>): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    for (const schema of new Set(schemas)) await client.query(`DROP SCHEMA IF EXISTS ${new PostgresNames(schema).quotedSchema} CASCADE`);
  } finally {
    await client.end();
  }
}
