// The eventfold bin against a real Pulsar standalone (2 partitions, a namespace of its own,
// dropped after).
import { pulsar } from '../../src/backends/pulsar/index.ts';
import { dropNamespace } from '../backends/pulsar/support.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../services/env.ts';
import { cliBackendSuite } from './backend-suite.ts';

const namespace = uniqueName('cli');
const prefix = 'shop';
const url = new URL(PULSAR_SERVICE_URL);
for (const [k, v] of Object.entries({ namespace, prefix, partitions: '2', adminUrl: PULSAR_URL })) url.searchParams.set(k, v);

cliBackendSuite({
  name: 'Pulsar',
  url: url.href,
  driver: () => pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 2 }),
  partitions: 2,
  group: (name) => name,
  listsGroups: false,
  cleanup: () => dropNamespace('public', namespace),
});
