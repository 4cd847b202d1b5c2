// eventfold's embedded store (node:sqlite), file-backed in WAL mode with its default
// synchronous=FULL: every acknowledged append is fsynced.
import { join } from 'node:path';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import type { BenchTarget } from '../target.ts';
import { eventfoldTarget } from './eventfold.ts';

export function eventfoldSqlite(): BenchTarget {
  return eventfoldTarget({
    driver: (dir) => sqlite({ path: join(dir, 'eventfold.db') }),
    notes: ['eventfold: `sqlite({ path })` driver (node:sqlite, SQLite 3.53), WAL, synchronous=FULL (default), one connection'],
  });
}
