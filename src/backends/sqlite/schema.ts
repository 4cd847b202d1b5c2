/** Tables of the embedded store. `position` is the global offset (the store has one partition). */
export const SCHEMA_VERSION = 1;

export const CREATE_TABLES = `
CREATE TABLE IF NOT EXISTS ef_events (
  position       INTEGER PRIMARY KEY,
  id             TEXT    NOT NULL UNIQUE,
  stream_id      TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  type           TEXT    NOT NULL,
  schema_version INTEGER NOT NULL,
  codec          TEXT    NOT NULL,
  data           BLOB    NOT NULL,
  metadata       TEXT    NOT NULL,
  recorded_at    INTEGER NOT NULL,
  UNIQUE (stream_id, version)
);
CREATE INDEX IF NOT EXISTS ef_events_recorded_at ON ef_events (recorded_at);
CREATE TABLE IF NOT EXISTS ef_snapshots (
  stream_id      TEXT    NOT NULL,
  name           TEXT    NOT NULL,
  schema_version INTEGER NOT NULL,
  version        INTEGER NOT NULL,
  partition      INTEGER NOT NULL,
  offset         INTEGER NOT NULL,
  state          BLOB    NOT NULL,
  taken_at       INTEGER NOT NULL,
  PRIMARY KEY (stream_id, name)
);
CREATE TABLE IF NOT EXISTS ef_checkpoints (
  group_name TEXT    NOT NULL,
  partition  INTEGER NOT NULL,
  offset     INTEGER NOT NULL,
  PRIMARY KEY (group_name, partition)
);
`;
