// Suites by backend. Add `redis`, `kafka`, `pulsar` here with their own target files.
import type { Suite } from '../target.ts';
import { emmettSqlite } from './sqlite-emmett.ts';
import { eventfoldSqlite } from './sqlite-eventfold.ts';

export const suites: Readonly<Record<string, Suite>> = {
  sqlite: { name: 'sqlite', subject: eventfoldSqlite, baseline: emmettSqlite },
};
