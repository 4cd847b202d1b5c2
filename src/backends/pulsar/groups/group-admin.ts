import { DriverError } from '../../../core/errors.ts';
import { sleep } from '../../../core/sleep.ts';
import { PULSAR as NAME } from '../client/errors.ts';
import type { PulsarAdmin } from '../admin.ts';
import { applyDeadLetterTtl } from '../policies.ts';
import { ENTRY_SPAN, entryOffset, type PulsarNames } from '../records.ts';
import type { ConsumerGroupPartition } from '../../../core/driver.ts';

/** REST path of a topic: `persistent/<tenant>/<namespace>/<local name>`. */
function path(topic: string): string {
  return `persistent/${topic.slice('persistent://'.length)}`;
}

interface GroupAdminContext {
  readonly admin: PulsarAdmin;
  readonly deadLetterTtlSeconds?: number | undefined;
}

interface TopicStats {
  readonly subscriptions?: Record<string, { readonly consumers?: readonly unknown[] } | undefined>;
}

/**
 * A group's topics and subscriptions through admin REST: made on first use, moved by a reset.
 * The subscription is durable (its cursor is the group's position), one per events partition and
 * one on the group's redrive topic.
 */
export class GroupAdmin {
  readonly #ctx: GroupAdminContext;
  readonly #names: PulsarNames;
  readonly #partitions: number;
  readonly #topicsMade = new Set<string>();

  /** `ctx.admin` is read when used (the driver connects after it is made). */
  constructor(ctx: GroupAdminContext, names: PulsarNames, partitions: number) {
    this.#ctx = ctx;
    this.#names = names;
    this.#partitions = partitions;
  }

  /**
   * The DLQ and redrive topics, and the subscription at `start` on every events partition that
   * has none yet (an existing one keeps its position: 409), at the start of the redrive topic.
   */
  async ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void> {
    await this.ensureTopics(group);
    const sub = encodeURIComponent(this.#names.subscription(group));
    const at = start === 'end' ? 'latest' : 'earliest';
    for (let p = 0; p < this.#partitions; p++) await this.#subscribe(this.#names.partition(p), sub, at);
    await this.#subscribe(this.#names.redrive(group), sub, 'earliest');
  }

  /**
   * Creates the subscription unless it exists (409). 412 "Subscription Busy" is another process
   * (or member) creating or subscribing to it at the same moment: asked again shortly.
   */
  async #subscribe(topic: string, sub: string, at: 'earliest' | 'latest'): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const res = await this.#ctx.admin.request('PUT', `${path(topic)}/subscription/${sub}`, at);
      if (res.ok || res.status === 409) return;
      if (res.status !== 412 || attempt >= 20) {
        throw new DriverError(
          NAME,
          `admin PUT subscription ${sub} on ${topic} answered ${res.status}: ${(await res.text()).slice(0, 500)}`,
        );
      }
      await sleep(50 * attempt);
    }
  }

  /** The group's DLQ (with its TTL, when one is set) and redrive topics (non-partitioned), once per process. */
  async ensureTopics(group: string): Promise<void> {
    const dlq = this.#names.deadLetters(group);
    for (const topic of [dlq, this.#names.redrive(group)]) {
      if (this.#topicsMade.has(topic)) continue;
      await this.#ctx.admin.ok('PUT', path(topic), undefined, [409]);
      const ttl = this.#ctx.deadLetterTtlSeconds;
      if (topic === dlq && ttl !== undefined) await applyDeadLetterTtl(this.#ctx.admin, topic, ttl);
      this.#topicsMade.add(topic);
    }
  }

  /** Consumers connected to the group's subscription, over its events partitions and redrive topic. */
  /**
   * Each events partition's cursor (internalStats: markDeletePosition), as the last offset of
   * the entry it has acknowledged through: the group's events after it are not yet acknowledged,
   * delivered or not (Pulsar keeps no separate "handed out" mark, so `pending` is left out).
   * Undefined when the group has no subscription there.
   */
  async describe(group: string): Promise<ConsumerGroupPartition[] | undefined> {
    const sub = this.#names.subscription(group);
    const out: ConsumerGroupPartition[] = [];
    for (let partition = 0; partition < this.#partitions; partition++) {
      const res = await this.#ctx.admin.request('GET', `${path(this.#names.partition(partition))}/internalStats`);
      if (res.status === 404) return undefined;
      if (!res.ok) throw new DriverError(NAME, `internal stats of partition ${partition}: HTTP ${res.status}`);
      const stats = (await res.json()) as { cursors?: Record<string, { markDeletePosition?: string } | undefined> };
      // internalStats names cursors URL-encoded (`cg%3Dorders`).
      const cursor = stats.cursors?.[encodeURIComponent(sub)] ?? stats.cursors?.[sub];
      const mark = /^(-?\d+):(-?\d+)$/.exec(cursor?.markDeletePosition ?? '');
      if (!mark) return undefined;
      const [ledgerId, entryId] = [BigInt(mark[1]!), BigInt(mark[2]!)];
      const position =
        ledgerId < 0n
          ? undefined
          : entryId < 0n
            ? entryOffset({ ledgerId, entryId: 0n, partition: -1, batchIndex: -1 }) - 1n
            : entryOffset({ ledgerId, entryId, partition: -1, batchIndex: -1 }) + ENTRY_SPAN - 1n;
      out.push({ partition, position: position === undefined || position < 0n ? undefined : position, pending: undefined });
    }
    return out;
  }

  async consumers(group: string): Promise<number> {
    const sub = this.#names.subscription(group);
    const topics = [...Array.from({ length: this.#partitions }, (_, p) => this.#names.partition(p)), this.#names.redrive(group)];
    let count = 0;
    for (const topic of topics) {
      const res = await this.#ctx.admin.request('GET', `${path(topic)}/stats`);
      if (res.status === 404) continue;
      const stats = (await res.json()) as TopicStats;
      count += stats.subscriptions?.[sub]?.consumers?.length ?? 0;
    }
    return count;
  }

  /**
   * Moves the cursor of every events partition's subscription to the start or the end, by
   * publish time (resetcursor/{time}): 0 is before every entry; the largest safe integer is after
   * every entry whatever the clocks say. The redrive topic keeps its position (a reset replays the log).
   */
  async reset(group: string, to: 'beginning' | 'end'): Promise<void> {
    const sub = encodeURIComponent(this.#names.subscription(group));
    const time = to === 'beginning' ? 0 : Number.MAX_SAFE_INTEGER;
    for (let p = 0; p < this.#partitions; p++) {
      await this.#ctx.admin.ok('POST', `${path(this.#names.partition(p))}/subscription/${sub}/resetcursor/${time}`);
    }
  }
}
