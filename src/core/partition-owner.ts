import type { AppendRequest, AppendResult, PartitionLease } from './driver.ts';
import { DriverError, DuplicateEventIdError, ExpectedVersionConflictError, InvalidArgumentError, PartitionFencedError } from './errors.ts';
import { matchesExpectedVersion } from './expected-version.ts';
import type { RuntimeDriver } from './runtime-driver.ts';

/** What a writer knows of a partition it owns: every stream's version and every event id in it. */
interface OwnedPartition {
  readonly lease: PartitionLease;
  readonly versions: Map<string, number>;
  readonly ids: Map<string, { streamId: string; version: number }>;
  /** Offset up to which `versions` and `ids` are complete. */
  through: bigint | undefined;
}

const CATCH_UP_BATCH = 1000;

/**
 * Optimistic concurrency for logs without a conditional append (Kafka, Pulsar), written once
 * for all of them. A writer appends to a partition only while it owns it: it claims the
 * partition (which fences every earlier owner), reads it up to the last committed offset to
 * learn each stream's version, checks the expected version in memory, and appends through its
 * lease in a transaction.
 *
 * Two processes that both receive commands for one aggregate make progress by **takeover on
 * demand**: the one that wants to write claims the partition; the other's next append fails as
 * fenced (nothing of it becomes visible), so it claims the partition back, catches up — now
 * seeing the first one's events — and checks again, which turns a stale expected version into
 * an ordinary `ExpectedVersionConflictError`. The cost: a takeover is a claim plus a read of
 * what the other wrote, so two processes hammering one partition pay that on every switch;
 * route commands for one aggregate to one process when that matters. Memory: the index holds
 * every stream name and event id of an owned partition (roughly 100 bytes per event).
 */
export class PartitionOwners {
  readonly #runtime: RuntimeDriver;
  readonly #owned = new Map<number, OwnedPartition>();
  /** The last known index of partitions this process lost, reused on the next claim. */
  readonly #lost = new Map<number, Omit<OwnedPartition, 'lease'>>();
  readonly #queues = new Map<number, Promise<unknown>>();
  readonly #maxTakeovers: number;

  constructor(runtime: RuntimeDriver, maxTakeovers = 3) {
    this.#runtime = runtime;
    this.#maxTakeovers = maxTakeovers;
  }

  /** Checks and appends one request; appends to one partition run one at a time in this process. */
  append(request: AppendRequest): Promise<AppendResult> {
    return this.#serialized([request.partition], () => this.#append(request));
  }

  /**
   * Checks and appends requests for several streams as one transaction through
   * `PartitionLease.appendWith` (all or none); it waits for, and holds, every partition involved.
   */
  appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const partitions = [...new Set(requests.map((r) => r.partition))].sort((a, b) => a - b);
    return this.#serialized(partitions, () => this.#appendMany(requests, partitions));
  }

  /** Gives up every lease (on close). */
  async releaseAll(): Promise<void> {
    const owned = [...this.#owned.values()];
    this.#owned.clear();
    await Promise.allSettled(owned.map((o) => o.lease.release()));
  }

  async #append(request: AppendRequest): Promise<AppendResult> {
    const driver = this.#runtime.driver;
    for (let takeovers = 0; ; takeovers++) {
      const fresh = !this.#owned.has(request.partition);
      const owned = await this.#claim(request.partition);
      const current = owned.versions.get(request.streamId) ?? 0;
      if (!matchesExpectedVersion(request.expectedVersion, current)) {
        // A lease held from before may be stale: another process may have taken the partition
        // and written since. Only a check against a fresh claim can say "conflict".
        if (!fresh) {
          this.#drop(request.partition, owned);
          continue;
        }
        throw new ExpectedVersionConflictError(request.streamId, request.expectedVersion, current, driver.name);
      }
      for (const event of request.events) {
        const existing = owned.ids.get(event.id);
        if (existing) throw new DuplicateEventIdError(event.id, existing, driver.name);
      }
      try {
        // The lease gets the exact version it appends after, so it can number the events.
        const checked = { ...request, expectedVersion: current };
        const [result] = await owned.lease.append([checked]);
        if (!result) throw new DriverError(driver.name, 'the lease returned no result for the append');
        this.#record(owned, checked, result);
        return result;
      } catch (error) {
        // Fenced, or an outcome we cannot know: either way our index may be stale. Forget the
        // lease; the next claim reads what happened from the log itself.
        this.#drop(request.partition, owned);
        if (error instanceof PartitionFencedError && takeovers < this.#maxTakeovers + 1) continue;
        throw error;
      }
    }
  }

  async #appendMany(requests: readonly AppendRequest[], partitions: readonly number[]): Promise<AppendResult[]> {
    const driver = this.#runtime.driver;
    for (let takeovers = 0; ; takeovers++) {
      const fresh = new Set(partitions.filter((p) => !this.#owned.has(p)));
      const owned = new Map<number, OwnedPartition>();
      for (const partition of partitions) owned.set(partition, await this.#claim(partition));
      const checked: (AppendRequest & { expectedVersion: number })[] = [];
      const batchIds = new Set<string>();
      let stale = false;
      for (const request of requests) {
        const o = owned.get(request.partition)!;
        const current = o.versions.get(request.streamId) ?? 0;
        if (!matchesExpectedVersion(request.expectedVersion, current)) {
          // As in `append`: only a fresh claim can say "conflict".
          if (!fresh.has(request.partition)) {
            this.#drop(request.partition, o);
            stale = true;
            break;
          }
          throw new ExpectedVersionConflictError(request.streamId, request.expectedVersion, current, driver.name);
        }
        for (const event of request.events) {
          const existing = o.ids.get(event.id);
          if (existing) throw new DuplicateEventIdError(event.id, existing, driver.name);
          if (batchIds.has(event.id)) throw new InvalidArgumentError(`event id ${event.id} appears twice in one appendMany`);
          batchIds.add(event.id);
        }
        checked.push({ ...request, expectedVersion: current });
      }
      if (stale) continue;
      const [lead, ...rest] = partitions.map((p) => owned.get(p)!.lease);
      try {
        let results: AppendResult[];
        if (rest.length === 0) results = await lead!.append(checked);
        else if (lead!.appendWith) results = await lead!.appendWith(rest, checked);
        else throw new DriverError(driver.name, 'the driver says multiStreamAppend but its leases have no appendWith');
        if (results.length !== checked.length) throw new DriverError(driver.name, 'the lease returned a result per request it was not given');
        checked.forEach((request, i) => this.#record(owned.get(request.partition)!, request, results[i]!));
        return results;
      } catch (error) {
        // Fenced, or an outcome we cannot know: forget every lease involved (see `append`).
        for (const [partition, o] of owned) this.#drop(partition, o);
        if (error instanceof PartitionFencedError && takeovers < this.#maxTakeovers + 1) continue;
        throw error;
      }
    }
  }

  /** Adds an append the lease confirmed to the partition's index. */
  #record(owned: OwnedPartition, request: AppendRequest & { expectedVersion: number }, result: AppendResult): void {
    let version = request.expectedVersion;
    for (const event of request.events) owned.ids.set(event.id, { streamId: request.streamId, version: ++version });
    owned.versions.set(request.streamId, result.nextExpectedVersion);
    const last = result.positions[result.positions.length - 1]?.offset;
    if (last !== undefined && (owned.through === undefined || last > owned.through)) owned.through = last;
  }

  async #claim(partition: number): Promise<OwnedPartition> {
    const owned = this.#owned.get(partition);
    if (owned) return owned;
    const driver = this.#runtime.driver;
    if (!driver.claimPartition) throw new DriverError(driver.name, 'a partition-owner driver must implement claimPartition');
    const lease = await driver.claimPartition(partition);
    const known = this.#lost.get(partition);
    this.#lost.delete(partition);
    const next: OwnedPartition = {
      lease,
      versions: known?.versions ?? new Map(),
      ids: known?.ids ?? new Map(),
      through: known?.through,
    };
    // Catch up to what was committed when the claim took effect. Nobody else can commit to
    // the partition while we hold it, so after this the index is the truth.
    const end = lease.caughtUpTo;
    while (end !== undefined && (next.through === undefined || next.through < end)) {
      const page = await driver.readPartition(partition, { after: next.through, limit: CATCH_UP_BATCH });
      for (const event of page) {
        if (event.position.offset > end) break;
        next.versions.set(event.streamId, event.version);
        next.ids.set(event.id, { streamId: event.streamId, version: event.version });
        next.through = event.position.offset;
      }
      if (page.length < CATCH_UP_BATCH) break;
    }
    this.#owned.set(partition, next);
    return next;
  }

  #drop(partition: number, owned: OwnedPartition): void {
    if (this.#owned.get(partition) !== owned) return;
    this.#owned.delete(partition);
    this.#lost.set(partition, { versions: owned.versions, ids: owned.ids, through: owned.through });
    owned.lease.release().catch(() => undefined);
  }

  /**
   * Runs `fn` after everything queued on these partitions, and queues later work behind it.
   * All queues are taken at once (no waiting in between), so overlapping multi-partition
   * appends cannot wait on each other in a cycle.
   */
  #serialized<T>(partitions: readonly number[], fn: () => Promise<T>): Promise<T> {
    const previous = Promise.allSettled(partitions.map((p) => this.#queues.get(p) ?? Promise.resolve()));
    const run = previous.then(fn);
    const tail = run.catch(() => undefined);
    for (const partition of partitions) this.#queues.set(partition, tail);
    void tail.then(() => {
      for (const partition of partitions) if (this.#queues.get(partition) === tail) this.#queues.delete(partition);
    });
    return run;
  }
}
