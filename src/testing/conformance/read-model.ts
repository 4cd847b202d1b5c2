// A tiny idempotent read model for consumer tests: one row per event id, written once;
// `applied` counts the writes that really changed it.
import type { DatabaseSync } from 'node:sqlite';

export function createReadModel(db: DatabaseSync): void {
  db.exec('CREATE TABLE IF NOT EXISTS applied (event_id TEXT PRIMARY KEY, consumer TEXT NOT NULL, amount INTEGER NOT NULL)');
  db.exec('CREATE TABLE IF NOT EXISTS attempts (event_id TEXT NOT NULL, consumer TEXT NOT NULL)');
}

export function applyToReadModel(db: DatabaseSync, event: { id: string; data: unknown }, consumer: string): void {
  db.prepare('INSERT INTO attempts VALUES (?, ?)').run(event.id, consumer);
  db.prepare('INSERT INTO applied VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING').run(
    event.id,
    consumer,
    (event.data as { amount: number }).amount,
  );
}
