// A partition-owner backend for testing the core's ownership path without a broker: the
// embedded SQLite store with its conditional append switched off and replaced by epoch
// leases. Claiming a partition bumps its epoch; a lease whose epoch is no longer current is
// fenced, checked inside the same transaction as its insert — the contract of PartitionLease,
// kept by a real database across connections and processes. Versions are NOT checked here:
// that is the core's job, and the (stream, version) unique index turns any miss of the core
// into a constraint error the tests would see.
import { DatabaseSync } from 'node:sqlite';
import type { AppendRequest, AppendResult, PartitionLease, PartitionOwnerDriver, Position } from '../../src/index.ts';
import { DriverError, PartitionFencedError } from '../../src/index.ts';
import { SqliteDriver } from '../../src/backends/sqlite/index.ts';

const NAME = 'fenced-sqlite';

export function fencedSqlite(path: string): PartitionOwnerDriver {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 20000');
  const inner = new SqliteDriver({ database: db });
  const driver: PartitionOwnerDriver = {
    name: NAME,
    partitions: 1,
    concurrency: 'partition-owner',
    capabilities: { timeIndex: true },
    appendLimits: { maxAppends: 100, maxBytes: 512 * 1024 },
    open: async () => {
      await inner.open();
      db.exec('CREATE TABLE IF NOT EXISTS fx_leases (partition INTEGER PRIMARY KEY, epoch INTEGER NOT NULL)');
    },
    close: async () => {
      await inner.close();
      db.close();
    },
    readPartition: (p, r) => inner.readPartition(p, r),
    partitionHead: (p) => inner.partitionHead(p),
    firstOffsetAtTime: (p, t) => inner.firstOffsetAtTime(p, t),
    readSnapshot: (s, n) => inner.readSnapshot(s, n),
    writeSnapshot: (s) => inner.writeSnapshot(s),
    readCheckpoint: (g) => inner.readCheckpoint(g),
    writeCheckpoint: (g, p) => inner.writeCheckpoint(g, p),
    deleteCheckpoint: (g) => inner.deleteCheckpoint(g),
    claimPartition: async (partition): Promise<PartitionLease> => {
      db.exec('BEGIN IMMEDIATE');
      let epoch: number;
      try {
        db.prepare('INSERT INTO fx_leases VALUES (?, 1) ON CONFLICT (partition) DO UPDATE SET epoch = epoch + 1').run(partition);
        epoch = (db.prepare('SELECT epoch FROM fx_leases WHERE partition = ?').get(partition) as { epoch: number }).epoch;
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
      return {
        partition,
        caughtUpTo: await inner.partitionHead(partition),
        release: async () => undefined,
        append: async (requests: readonly AppendRequest[]): Promise<AppendResult[]> => {
          db.exec('BEGIN IMMEDIATE');
          try {
            const current = (db.prepare('SELECT epoch FROM fx_leases WHERE partition = ?').get(partition) as { epoch: number }).epoch;
            if (current !== epoch) throw new PartitionFencedError(NAME, partition);
            const insert = db.prepare(
              'INSERT INTO ef_events (id, stream_id, version, type, schema_version, codec, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
            );
            const results = requests.map((request) => {
              if (typeof request.expectedVersion !== 'number') throw new DriverError(NAME, 'the core passes the exact version');
              let version = request.expectedVersion;
              const positions: Position[] = request.events.map((e) => {
                const r = insert.run(e.id, request.streamId, ++version, e.type, e.schemaVersion, e.codec, e.data, e.metadata, e.time);
                return { partition, offset: BigInt(r.lastInsertRowid) };
              });
              return { nextExpectedVersion: version, positions };
            });
            db.exec('COMMIT');
            return results;
          } catch (error) {
            db.exec('ROLLBACK');
            throw error;
          }
        },
      };
    },
  };
  return driver;
}
