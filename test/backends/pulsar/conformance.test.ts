// The conformance suite on the real Pulsar standalone (scripts/services starts it on
// 127.0.0.1:6650, admin on 8080): every store in one test namespace, its topics removed after.
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { runConformanceSuite } from '../../conformance/suite.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { dropNamespace } from './support.ts';

const namespace = uniqueName('conformance');

runConformanceSuite({
  name: 'pulsar',
  driver: (storeName) => pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix: storeName, partitions: 4 }),
  cleanup: () => dropNamespace('public', namespace),
});
