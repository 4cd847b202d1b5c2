// Suites by backend, in the order a default run measures them. Add `kafka`, `pulsar` here
// with their own target files.
import type { Suite } from '../target.ts';
import { countingForks, describeRedis, preflightRedis } from './redis-common.ts';
import { eventfoldRedis } from './redis-eventfold.ts';
import { rawRedis } from './redis-raw.ts';
import { emmettSqlite } from './sqlite-emmett.ts';
import { eventfoldSqlite } from './sqlite-eventfold.ts';

export const suites: Readonly<Record<string, Suite>> = {
  sqlite: { name: 'sqlite', subject: eventfoldSqlite, baseline: emmettSqlite },
  redis: {
    name: 'redis',
    subject: () => countingForks(eventfoldRedis()),
    baseline: () => countingForks(rawRedis()),
    preflight: preflightRedis,
    describe: describeRedis,
  },
};
