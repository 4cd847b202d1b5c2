// The conformance suite on a real PostgreSQL (scripts/services starts it on 127.0.0.1:5432):
// a schema per store.
import { postgres } from '../../../src/backends/postgres/index.ts';
import { runConformanceSuite } from '../../conformance/suite.ts';
import { POSTGRES_URL } from '../../services/env.ts';
import { dropSchemas } from './schemas.ts';

const schemas: string[] = [];
runConformanceSuite({
  name: 'postgres',
  driver: (storeName) => {
    schemas.push(storeName);
    return postgres({ connectionString: POSTGRES_URL, schema: storeName });
  },
  cleanup: () => dropSchemas(schemas),
});
