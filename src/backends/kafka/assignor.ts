import type { ClusterMetadata, GroupPartitionsAssigner, GroupPartitionsAssignments, GroupProtocolSubscription } from '@platformatic/kafka';

/**
 * How the members of a `store.consume` group (consumer-groups.ts) share the partitions: the
 * leader of each rebalance runs this (Kafka's classic protocol assigns on the client).
 *
 * The client library's default, round robin, deals every partition of every topic in one pass
 * over the members in the order the coordinator listed them. It is even in count, but it
 * forgets who held what: each join or leave deals all partitions anew, so nearly every
 * partition changes hands (5 of 6 when a third member joins two), and every moved partition
 * is read again from its committed offset — what the old owner had handed out and not yet
 * acknowledged is delivered twice, and the old owner keeps working partitions it no longer
 * owns until it hears of the rebalance. Work piles up on whoever happened to hold most
 * partitions through the churn.
 *
 * This assignor is balanced and sticky:
 *  - each topic on its own (the default events topic, every category's topic, the redrive
 *    topic), so a busy category is spread over the group even when the other topics are idle:
 *    every member gets floor(n/m) or ceil(n/m) of a topic's n partitions, and the extra ones go
 *    to the members holding fewest partitions so far, so totals differ by at most one;
 *  - a partition stays with the member that held it (as the member itself reports in its join)
 *    unless balance needs it elsewhere: a join moves only what the newcomer gets, a leave only
 *    what the leaver had;
 *  - members are ordered by consumer name (then member id), not by the coordinator's order, so
 *    the same group gets the same assignment (a restarted worker finds its partitions free).
 *
 * Members say who they are and what they hold in the protocol's user data (JSON:
 * `{ v: 1, consumer, generation, owned: { topic: partitions } }`); two claims on one partition
 * (a member that fell out of the group and came back) go to the one of the later generation.
 * The protocol is `eventfold-sticky`; members also offer `roundrobin`, so a group with members
 * of an older eventfold (which offer only that) still forms, under round robin, during an upgrade.
 */
export const STICKY_PROTOCOL = 'eventfold-sticky';

interface Claim {
  readonly consumer: string;
  readonly generation: number;
  readonly owned: Readonly<Record<string, readonly number[]>>;
}

/** What the assignment works on: a member, the topics it subscribed to, what it says it holds. */
export interface AssignMember {
  readonly memberId: string;
  readonly topics: readonly string[];
  readonly claim: Claim | undefined;
}

/** The group protocols one member offers, and how it tells the next rebalance what it holds. */
export function memberProtocols(consumer: string): {
  protocols: GroupProtocolSubscription[];
  holding(generation: number, assignments: readonly { topic: string; partitions: readonly number[] }[]): void;
} {
  const sticky: GroupProtocolSubscription = {
    name: STICKY_PROTOCOL,
    version: 0,
    metadata: encodeClaim({ consumer, generation: -1, owned: {} }),
  };
  return {
    protocols: [sticky, { name: 'roundrobin', version: 1 }],
    holding(generation, assignments) {
      // The library encodes the protocols anew for every join, from this same object.
      sticky.metadata = encodeClaim({
        consumer,
        generation,
        owned: Object.fromEntries(assignments.map((a) => [a.topic, [...a.partitions]])),
      });
    },
  };
}

function encodeClaim(claim: Claim): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...claim }), 'utf8');
}

export function decodeClaim(data: Buffer | string | undefined): Claim | undefined {
  if (data === undefined || data.length === 0) return undefined;
  try {
    const parsed = JSON.parse(typeof data === 'string' ? data : data.toString('utf8')) as Partial<Claim> & { v?: unknown };
    if (
      parsed.v !== 1 ||
      typeof parsed.consumer !== 'string' ||
      typeof parsed.generation !== 'number' ||
      typeof parsed.owned !== 'object' ||
      parsed.owned === null
    )
      return undefined;
    const owned: Record<string, number[]> = {};
    for (const [topic, partitions] of Object.entries(parsed.owned)) {
      if (Array.isArray(partitions)) owned[topic] = partitions.filter((p): p is number => Number.isInteger(p) && p >= 0);
    }
    return { consumer: parsed.consumer, generation: parsed.generation, owned };
  } catch {
    return undefined;
  }
}

/**
 * The assignment itself, a pure function: member id -> topic -> partitions (every member
 * present, possibly with nothing). `topics` gives each topic's partition count.
 */
export function assignPartitions(
  members: readonly AssignMember[],
  topics: ReadonlyMap<string, number>,
): Map<string, Map<string, number[]>> {
  const order = [...members].sort((a, b) => compare(a.claim?.consumer, b.claim?.consumer) || compare(a.memberId, b.memberId));
  const rank = new Map(order.map((m, i) => [m.memberId, i]));
  const result = new Map(order.map((m) => [m.memberId, new Map<string, number[]>()]));
  const load = new Map(order.map((m) => [m.memberId, 0]));
  // Who held each partition: the claim of the latest generation (ties: the first in order).
  const holder = new Map<string, { memberId: string; generation: number }>();
  for (const m of order) {
    for (const [topic, partitions] of Object.entries(m.claim?.owned ?? {})) {
      for (const p of partitions) {
        const key = `${topic}\u0000${p}`;
        const seen = holder.get(key);
        if (!seen || m.claim!.generation > seen.generation) holder.set(key, { memberId: m.memberId, generation: m.claim!.generation });
      }
    }
  }
  // Big topics first, so the single partition of the redrive topic goes to a member with fewest.
  const ordered = [...topics].sort(([a, n], [b, k]) => k - n || compare(a, b));
  for (const [topic, count] of ordered) {
    const eligible = order.filter((m) => m.topics.includes(topic));
    if (eligible.length === 0 || count <= 0) continue;
    const heldBy = (p: number): string | undefined => holder.get(`${topic}\u0000${p}`)?.memberId;
    const heldCount = new Map<string, number>();
    for (let p = 0; p < count; p++) {
      const h = heldBy(p);
      if (h !== undefined) heldCount.set(h, (heldCount.get(h) ?? 0) + 1);
    }
    const base = Math.floor(count / eligible.length);
    const extra = count % eligible.length;
    // The extra partitions go to the least loaded; among equals, to those already holding more here.
    const byNeed = [...eligible].sort(
      (a, b) =>
        load.get(a.memberId)! - load.get(b.memberId)! ||
        (heldCount.get(b.memberId) ?? 0) - (heldCount.get(a.memberId) ?? 0) ||
        rank.get(a.memberId)! - rank.get(b.memberId)!,
    );
    const quota = new Map(byNeed.map((m, i) => [m.memberId, base + (i < extra ? 1 : 0)]));
    const taken = new Map(eligible.map((m) => [m.memberId, [] as number[]]));
    const free: number[] = [];
    for (let p = 0; p < count; p++) {
      const h = heldBy(p);
      const mine = h === undefined ? undefined : taken.get(h);
      if (mine && mine.length < quota.get(h!)!) mine.push(p);
      else free.push(p);
    }
    for (const m of eligible) {
      const mine = taken.get(m.memberId)!;
      while (mine.length < quota.get(m.memberId)!) mine.push(free.shift()!);
      if (mine.length === 0) continue;
      mine.sort((a, b) => a - b);
      result.get(m.memberId)!.set(topic, mine);
      load.set(m.memberId, load.get(m.memberId)! + mine.length);
    }
  }
  return result;
}

/** `assignPartitions` as the client library's partition assigner (the group leader runs it). */
export const stickyAssigner: GroupPartitionsAssigner = (
  _leader,
  members,
  topics,
  metadata: ClusterMetadata,
): GroupPartitionsAssignments[] => {
  const counts = new Map<string, number>();
  for (const topic of topics) {
    const t = metadata.topics.get(topic);
    if (t) counts.set(topic, t.partitionsCount);
  }
  const input: AssignMember[] = [...members.values()].map((m) => ({
    memberId: m.memberId,
    topics: m.topics ?? [],
    claim: decodeClaim(m.metadata),
  }));
  return [...assignPartitions(input, counts)].map(([memberId, byTopic]) => ({
    memberId,
    assignments: new Map([...byTopic].map(([topic, partitions]) => [topic, { topic, partitions }])),
  }));
};

function compare(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return a < b ? -1 : 1;
}
