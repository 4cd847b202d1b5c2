// Native consumer groups on the real Pulsar standalone (127.0.0.1:6650/8080): the consumer-group
// suite, unchanged. The broker's own view is read through admin REST: the group's subscription
// on each events partition and on its redrive topic (consumers, backlog).
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { EventStore } from '../../../src/index.ts';
import { pulsar, PulsarDriver } from '../../../src/backends/pulsar/index.ts';
import { type GroupEvent, runConsumerGroupSuite, until } from '../../conformance/consumer-groups.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { entryStart } from '../../../src/backends/pulsar/records.ts';
import { runtimeOf } from '../../support/runtime.ts';
import { admin, dropNamespace } from './support.ts';

const namespace = uniqueName('groups');
after(() => dropNamespace('public', namespace));

export function groupDriver(prefix: string): PulsarDriver {
  return pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 2 });
}

interface SubscriptionStats {
  readonly msgBacklog: number;
  readonly consumers: readonly { consumerName: string }[];
  readonly activeConsumerName?: string;
}

/** The group's subscription on each of its topics (events partitions, then the redrive topic), by the store's own names; undefined where it is missing. */
export async function subscriptionsIfAny(store: EventStore<GroupEvent>, group: string): Promise<(SubscriptionStats | undefined)[]> {
  const driver = runtimeOf(store).driver;
  assert.ok(driver instanceof PulsarDriver, 'a pulsar store');
  const { names } = driver;
  const topics = [...Array.from({ length: driver.partitions }, (_, p) => names.partition(p)), names.redrive(group)];
  const out: (SubscriptionStats | undefined)[] = [];
  for (const topic of topics) {
    const res = await admin('GET', `persistent/${topic.slice('persistent://'.length)}/stats`);
    if (res.status === 404) {
      out.push(undefined);
      continue;
    }
    assert.ok(res.ok, `stats of ${topic}: ${res.status}`);
    const stats = (await res.json()) as { subscriptions: Record<string, SubscriptionStats> };
    out.push(stats.subscriptions[names.subscription(group)]);
  }
  return out;
}

/** As subscriptionsIfAny, where the group must exist on every topic. */
export async function subscriptions(store: EventStore<GroupEvent>, group: string): Promise<SubscriptionStats[]> {
  const subs = await subscriptionsIfAny(store, group);
  return subs.map((sub, i) => {
    assert.ok(sub, `the group's subscription exists on topic ${i} of ${subs.length}`);
    return sub;
  });
}

type Pos = readonly [bigint, bigint];
const parsePos = (s: string): Pos => {
  const [l, e] = s.split(':');
  return [BigInt(l!), BigInt(e!)];
};
const atOrBefore = (a: Pos, b: Pos): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);

/**
 * Events of the store the group has not acknowledged, delivered or not: those whose entry the
 * subscription's cursor has not deleted (at or before its mark-delete position, or in one of its
 * individually deleted ranges "(a..b]"), plus the redrive topic's backlog (one event per message).
 */
async function unacknowledgedEvents(store: EventStore<GroupEvent>, group: string): Promise<number> {
  const driver = runtimeOf(store).driver;
  assert.ok(driver instanceof PulsarDriver, 'a pulsar store');
  const { names } = driver;
  let left = 0;
  for (let p = 0; p < driver.partitions; p++) {
    const topic = names.partition(p);
    const res = await admin('GET', `persistent/${topic.slice('persistent://'.length)}/internalStats`);
    assert.ok(res.ok, `internal stats of ${topic}: ${res.status}`);
    const stats = (await res.json()) as { cursors: Record<string, { markDeletePosition: string; individuallyDeletedMessages: string }> };
    // The managed ledger names a cursor by the URL-encoded subscription name.
    const cursor = stats.cursors[encodeURIComponent(names.subscription(group))];
    assert.ok(cursor, `the group's cursor exists on ${topic}`);
    const markDelete = parsePos(cursor.markDeletePosition);
    const ranges = [...cursor.individuallyDeletedMessages.matchAll(/\((\d+:\d+)\.\.(\d+:\d+)\]/g)].map(
      (m) => [parsePos(m[1]!), parsePos(m[2]!)] as const,
    );
    const events = await runtimeOf(store).use((d) => d.readPartition(p, { after: undefined, limit: 1_000_000 }));
    for (const event of events) {
      const { ledgerId, entryId } = entryStart(event.position.offset);
      const at: Pos = [ledgerId, entryId];
      const acked = atOrBefore(at, markDelete) || ranges.some(([from, to]) => !atOrBefore(at, from) && atOrBefore(at, to));
      if (!acked) left++;
    }
  }
  const redrive = (await subscriptions(store, group)).at(-1)!;
  return left + redrive.msgBacklog;
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
