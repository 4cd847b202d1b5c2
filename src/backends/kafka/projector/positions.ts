// How far this instance has committed each partition it holds, and the `caughtUp()` calls waiting on that.

interface Waiter {
  /** Offset each partition must reach. */
  readonly heads: Map<number, bigint>;
  readonly resolve: () => void;
}

/** The partitions of one assignment and the next offset to read on each, as committed (or skipped past markers). */
export class HeldPositions {
  /** Generation, member and partitions the positions were loaded for; '' until loaded, or after a failure. */
  #membership = '';
  #assigned: number[] = [];
  #positions = new Map<number, bigint>();
  #waiters: Waiter[] = [];

  /** Store partitions of the assignment, ascending. */
  get assigned(): readonly number[] {
    return this.#assigned;
  }

  /** Whether the positions are loaded for this membership (see `GroupMember.membership`). */
  isLoadedFor(membership: string): boolean {
    return membership === this.#membership;
  }

  /** Next offset to read on a held partition. */
  at(partition: number): bigint {
    return this.#positions.get(partition)!;
  }

  /** Positions read from the group for a new assignment. */
  load(membership: string, assigned: number[], positions: Map<number, bigint>): void {
    this.#positions = positions;
    this.#assigned = assigned;
    this.#membership = membership;
    this.#checkWaiters();
  }

  /** After a failed batch: read the positions back from the group rather than trusting memory. */
  forget(): void {
    this.#membership = '';
  }

  /** A committed batch moved these partitions on. */
  advance(ends: ReadonlyMap<number, bigint>): void {
    for (const [partition, end] of ends) this.#positions.set(partition, end);
    this.#checkWaiters();
  }

  /** Resolves once every held partition has reached its offset in `heads` (0 for those missing). */
  reach(heads: Map<number, bigint>): Promise<void> {
    const reached = new Promise<void>((resolve) => this.#waiters.push({ heads, resolve }));
    this.#checkWaiters();
    return reached;
  }

  #checkWaiters(): void {
    // Until the positions of an assignment are loaded there is nothing to compare.
    if (this.#membership === '') return;
    this.#waiters = this.#waiters.filter((waiter) => {
      const done = this.#assigned.every((partition) => {
        const at = this.#positions.get(partition);
        return at !== undefined && at >= (waiter.heads.get(partition) ?? 0n);
      });
      if (done) waiter.resolve();
      return !done;
    });
  }
}
