import type { PartitionState } from './member.ts';

/**
 * How many times each record was delivered in this process, per group and `topic/partition/offset`,
 * shared by all members of the group in the process and forgotten on ack. Across processes only
 * the head's count survives, in the committed offset's metadata (commits.ts).
 */
export class DeliveryCounts {
  readonly #byGroup = new Map<string, Map<string, number>>();

  /** Counts one more delivery of the record at `offset`: the head's persisted count is the floor. */
  increment(group: string, state: PartitionState, offset: bigint): number {
    const counts = this.#countsOf(group);
    const key = countKey(state, offset);
    const persisted = state.head?.offset === offset ? state.head.deliveries : 0;
    const count = Math.max(counts.get(key) ?? 0, persisted) + 1;
    counts.set(key, count);
    return count;
  }

  get(group: string, state: PartitionState, offset: bigint): number | undefined {
    return this.#countsOf(group).get(countKey(state, offset));
  }

  /** The record was acknowledged or dead-lettered. */
  forget(group: string, state: PartitionState, offset: bigint): void {
    this.#countsOf(group).delete(countKey(state, offset));
  }

  /** Forgets every count of the group (a reset: a replay is not a redelivery). */
  reset(group: string): void {
    this.#byGroup.delete(group);
  }

  #countsOf(group: string): Map<string, number> {
    let counts = this.#byGroup.get(group);
    if (!counts) {
      counts = new Map();
      this.#byGroup.set(group, counts);
    }
    return counts;
  }
}

function countKey(state: PartitionState, offset: bigint): string {
  return `${state.topic}/${state.partition}/${offset}`;
}
