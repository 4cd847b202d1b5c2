import type { PostgresNames } from './names.ts';

/** Version of the tables below; a database with a newer one is refused. */
export const SCHEMA_VERSION = 1;

/**
 * Bits of `off` below the transaction id: an event's offset is `xid << 20 | index in its
 * transaction` (see postgres-driver.ts), so one write takes at most 2^20 events.
 */
export const INDEX_BITS = 20;
export const MAX_EVENTS_PER_WRITE = 2 ** INDEX_BITS;

/**
 * The tables of one store, in their own schema. `off` is the partition offset (one partition):
 * ordered by writing transaction, so "all transactions below the oldest running one" is a
 * stable prefix of it. Constraint names are the driver's way to tell a version conflict from a
 * duplicate event id.
 */
export function createTables(n: PostgresNames): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${n.quotedSchema};
CREATE TABLE IF NOT EXISTS ${n.info} (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS ${n.events} (
  off            bigint  NOT NULL PRIMARY KEY,
  id             text    NOT NULL CONSTRAINT events_id UNIQUE,
  stream_id      text    NOT NULL,
  version        integer NOT NULL,
  type           text    NOT NULL,
  schema_version integer NOT NULL,
  codec          text    NOT NULL,
  data           bytea   NOT NULL,
  metadata       text    NOT NULL,
  recorded_at    bigint  NOT NULL,
  CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);
CREATE INDEX IF NOT EXISTS events_recorded_at ON ${n.events} (recorded_at);
CREATE TABLE IF NOT EXISTS ${n.snapshots} (
  stream_id      text    NOT NULL,
  name           text    NOT NULL,
  schema_version integer NOT NULL,
  version        integer NOT NULL,
  partition      integer NOT NULL,
  off            bigint  NOT NULL,
  state          bytea   NOT NULL,
  taken_at       bigint  NOT NULL,
  PRIMARY KEY (stream_id, name)
);
CREATE TABLE IF NOT EXISTS ${n.checkpoints} (
  group_name text      NOT NULL PRIMARY KEY,
  partitions integer[] NOT NULL,
  offsets    bigint[]  NOT NULL
);
CREATE TABLE IF NOT EXISTS ${n.groups} (
  group_name text   NOT NULL PRIMARY KEY,
  cursor     bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ${n.entries} (
  group_name   text    NOT NULL,
  off          bigint  NOT NULL,
  consumer     text,
  deliveries   integer NOT NULL,
  delivered_at bigint,
  PRIMARY KEY (group_name, off)
);
CREATE TABLE IF NOT EXISTS ${n.deadLetters} (
  id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  group_name text    NOT NULL,
  off        bigint  NOT NULL,
  reason     text    NOT NULL,
  deliveries integer NOT NULL,
  dead_at    bigint  NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_group ON ${n.deadLetters} (group_name, dead_at);
CREATE OR REPLACE FUNCTION ${n.notifyFunction}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], '');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS notify_append ON ${n.events};
CREATE TRIGGER notify_append AFTER INSERT ON ${n.events} FOR EACH STATEMENT EXECUTE FUNCTION ${n.notifyFunction}(${quoteLiteral(n.channel)});
`;
}

/** A string literal; only used for the channel name, which is built from a checked schema name. */
function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
