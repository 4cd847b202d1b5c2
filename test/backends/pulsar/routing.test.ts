// The routed-append process tests (test/conformance/routing-processes.ts) on the real Pulsar
// standalone, with the writer group on (`routing: true`).
import { after } from 'node:test';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { runRoutingProcessesSuite } from '../../conformance/routing-processes.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { dropNamespace } from './support.ts';

const PARTITIONS = 8;
const namespace = uniqueName('routing');
after(() => dropNamespace('public', namespace));
const options = (prefix: string) => ({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: PARTITIONS });

runRoutingProcessesSuite({
  name: 'pulsar',
  partitions: PARTITIONS,
  uniqueName,
  worker: (prefix) => ({ backend: 'pulsar', options: { ...options(prefix), routing: true } }),
  driver: (prefix) => pulsar(options(prefix)),
  // A SIGKILLed process's connection closes at once: the broker hands its requests partitions
  // on after the Failover delay (1 s), then the new owner claims and catches up.
  recoveryMs: 8000,
});
