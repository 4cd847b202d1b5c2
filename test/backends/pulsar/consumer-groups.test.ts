// Native consumer groups on the real Pulsar standalone (127.0.0.1:6650/8080): the consumer-group
// suite, unchanged. The broker's own view is read through admin REST (group-stats.ts).
import { after } from 'node:test';
import { pulsar, type PulsarDriver } from '../../../src/backends/pulsar/index.ts';
import { runConsumerGroupSuite, until } from '../../conformance/consumer-groups.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { subscriptionsIfAny, unacknowledgedEvents } from './group-stats.ts';
import { dropNamespace } from './support.ts';

const namespace = uniqueName('groups');
after(() => dropNamespace('public', namespace));

function groupDriver(prefix: string): PulsarDriver {
  return pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 2 });
}

runConsumerGroupSuite({
  name: 'pulsar',
  driver: groupDriver,
  worker: `pulsar:${namespace}`,
  // A member that stops leaves at once (its consumers close); 600 ms bounds one that stops reading.
  takeoverMs: 600,
  unacknowledged: (store, _prefix, group) => unacknowledgedEvents(store, group),
  ready: (store, _prefix, group, members) =>
    until(
      async () => (await subscriptionsIfAny(store, group)).every((s) => s?.consumers.length === members),
      `${members} consumer(s) on every topic of group ${group}`,
    ),
});
