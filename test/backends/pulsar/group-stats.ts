// What the broker says of a `store.consume` group on the Pulsar standalone, through admin REST:
// its subscription on each events partition and on its redrive topic (consumers, backlog), and
// which events its cursors have not acknowledged. Names come from the store's own driver.
import assert from 'node:assert/strict';
import type { EventStore } from '../../../src/index.ts';
import { PulsarDriver } from '../../../src/backends/pulsar/index.ts';
import { entryStart } from '../../../src/backends/pulsar/records.ts';
import type { GroupEvent } from '../../conformance/consumer-groups.ts';
import { runtimeOf } from '../../support/runtime.ts';
import { admin } from './support.ts';

export interface SubscriptionStats {
  readonly msgBacklog: number;
  readonly consumers: readonly { consumerName: string }[];
  readonly activeConsumerName?: string;
}

function driverOf(store: EventStore<GroupEvent>): PulsarDriver {
  const driver = runtimeOf(store).driver;
  assert.ok(driver instanceof PulsarDriver, 'a pulsar store');
  return driver;
}

/** The group's subscription on each of its topics (events partitions, then the redrive topic); undefined where it is missing. */
export async function subscriptionsIfAny(store: EventStore<GroupEvent>, group: string): Promise<(SubscriptionStats | undefined)[]> {
  const driver = driverOf(store);
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
export async function unacknowledgedEvents(store: EventStore<GroupEvent>, group: string): Promise<number> {
  const driver = driverOf(store);
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
