// The conformance suite on the embedded store, file-backed (WAL) and in memory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { sqlite } from '../../../src/backends/sqlite/index.ts';
import { runConformanceSuite } from '../../conformance/suite.ts';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-conformance-'));
runConformanceSuite({
  name: 'sqlite (file, WAL)',
  driver: (storeName) => sqlite({ path: join(dir, `${storeName}.db`) }),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});

// In memory: "reopening" a store means a new driver over the same in-memory database.
const memory = new Map<string, DatabaseSync>();
runConformanceSuite({
  name: 'sqlite (memory)',
  driver: (storeName) => {
    let db = memory.get(storeName);
    if (!db) {
      db = new DatabaseSync(':memory:');
      memory.set(storeName, db);
    }
    return sqlite({ database: db });
  },
  cleanup: async () => {
    for (const db of memory.values()) db.close();
    memory.clear();
  },
});
