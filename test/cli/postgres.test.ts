// The eventfold bin against a real PostgreSQL (a schema of its own, dropped after).
import { postgres } from '../../src/backends/postgres/index.ts';
import { dropSchemas } from '../backends/postgres/schemas.ts';
import { POSTGRES_URL, uniqueName } from '../services/env.ts';
import { cliBackendSuite } from './backend-suite.ts';

const schema = uniqueName('cli');
const url = new URL(POSTGRES_URL);
url.searchParams.set('schema', schema);

cliBackendSuite({
  name: 'PostgreSQL',
  url: url.href,
  driver: () => postgres({ connectionString: POSTGRES_URL, schema }),
  partitions: 1,
  group: (name) => name,
  listsGroups: true,
  cleanup: () => dropSchemas([schema]),
});
