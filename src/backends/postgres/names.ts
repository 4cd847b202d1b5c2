import { InvalidArgumentError } from '../../core/errors.ts';
import { quoteIdent } from '../sql/dialect.ts';

export { quoteIdent };

/**
 * A schema name: letters, digits, `_` and `-`, starting with a letter or `_`, at most 60
 * characters (PostgreSQL cuts identifiers at 63 bytes, and the notification channel adds
 * `ef:`). Checked, then always double-quoted, so no name can carry SQL.
 */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,59}$/;

export function assertSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new InvalidArgumentError(
      `schema must be 1 to 60 characters of letters, digits, "_" and "-", starting with a letter or "_"; got ${JSON.stringify(schema)}`,
    );
  }
  // PostgreSQL keeps `pg_…` for its own schemas: CREATE SCHEMA refuses them at open, too late and vaguely.
  if (schema.toLowerCase().startsWith('pg_')) {
    throw new InvalidArgumentError(`schema must not start with "pg_" (PostgreSQL reserves those names); got ${JSON.stringify(schema)}`);
  }
  return schema;
}

/** The qualified names of one store's tables and its notification channel, built once from a checked schema name. */
export class PostgresNames {
  readonly schema: string;
  /** The schema name, quoted (for DDL: `DROP SCHEMA … CASCADE`). */
  readonly quotedSchema: string;
  readonly events: string;
  readonly snapshots: string;
  readonly checkpoints: string;
  readonly groups: string;
  readonly entries: string;
  readonly deadLetters: string;
  readonly info: string;
  readonly notifyFunction: string;
  /** Channel of LISTEN/NOTIFY (a plain string for `pg_notify`; `quoteIdent` it for LISTEN). */
  readonly channel: string;

  constructor(schema: string) {
    this.schema = assertSchemaName(schema);
    this.quotedSchema = quoteIdent(schema);
    const q = (table: string): string => `${quoteIdent(schema)}.${quoteIdent(table)}`;
    this.events = q('events');
    this.snapshots = q('snapshots');
    this.checkpoints = q('checkpoints');
    this.groups = q('groups');
    this.entries = q('group_entries');
    this.deadLetters = q('dead_letters');
    this.info = q('schema_info');
    this.notifyFunction = q('notify_append');
    this.channel = `ef:${schema}`;
  }
}
