// Partition ownership for log backends (one job: check and append through leases). Over 400
// lines because the single-append group commit and appendMany share the claim, drop and
// serialization logic that keeps them from overtaking each other; split, that would leak.
import type { AppendRequest, AppendResult, PartitionLease, PartitionOwnerDriver } from '../driver.ts';
import { DriverError, ExpectedVersionConflictError, InvalidArgumentError, PartitionFencedError } from '../errors.ts';
import { conflictIsCertain, matchesExpectedVersion } from '../expected-version.ts';
import type { PartitionIndex, PartitionIndexes } from './partition-index.ts';
import { sleep } from '../sleep.ts';
import { storedIdError } from './stored-id.ts';

/** A partition this writer owns: its lease, and the partition's index (complete up to the claim, then kept up by our appends). */
interface OwnedPartition {
  readonly lease: PartitionLease;
  readonly index: PartitionIndex;
  /**
   * The index's `through` after our claim and our own appends. When the index is past it, reads
   * found events another writer appended since: it claimed the partition, so our lease is stale.
   */
  through: bigint | undefined;
}

const DEFAULT_CHECKPOINT_EVENTS = 20_000;

/**
 * Thrown to the append router when an append reaches a partition this process no longer owns
 * (the writer group moved it): the router sends it to the new owner. Never reaches a caller.
 */
export class NotOwnerError extends Error {
  readonly partition: number;
  constructor(partition: number) {
    super(`partition ${partition} is owned by another writer`);
    this.partition = partition;
  }
}

export interface PartitionOwnersOptions {
  /** Takeovers one append makes before a `PartitionFencedError` reaches the caller (takeover on demand). Default 3. */
  readonly maxTakeovers?: number;
  /**
   * With routing (append-router.ts): whether the writer group gives this process the
   * partition. A partition it does not own is never claimed (its appends fail with
   * `NotOwnerError`), except by an `appendMany` led by an owned partition, which borrows the
   * others for one transaction; a fenced lease of an owned partition is claimed back for as
   * long as `fencedRetryMs` allows.
   */
  readonly owns?: (partition: number) => boolean;
  /** With `owns`: how long an append keeps claiming an owned partition back after being fenced. Default 30000 ms. */
  readonly fencedRetryMs?: number;
}

interface Waiting {
  readonly request: AppendRequest;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

function requestBytes(request: AppendRequest): number {
  let bytes = request.streamId.length;
  for (const e of request.events) bytes += e.data.byteLength + e.metadata.length + e.type.length + e.id.length + 64;
  return bytes;
}

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
 * route commands for one aggregate to one process when that matters. The index is the store's
 * one index of the partition (`partition-index.ts`), shared with reads.
 */
export class PartitionOwners {
  readonly #driver: PartitionOwnerDriver;
  readonly #indexes: PartitionIndexes;
  readonly #owned = new Map<number, OwnedPartition>();
  readonly #queues = new Map<number, Promise<unknown>>();
  /** Appends waiting for their partition's next transaction. */
  readonly #waiting = new Map<number, Waiting[]>();
  readonly #maxTakeovers: number;
  readonly #owns: ((partition: number) => boolean) | undefined;
  readonly #fencedRetryMs: number;

  constructor(driver: PartitionOwnerDriver, indexes: PartitionIndexes, options: PartitionOwnersOptions = {}) {
    this.#driver = driver;
    this.#indexes = indexes;
    this.#maxTakeovers = options.maxTakeovers ?? 3;
    this.#owns = options.owns;
    this.#fencedRetryMs = options.fencedRetryMs ?? 30_000;
  }

  /** Whether a fenced append may claim the partition back and try again. */
  #mayRetry(partitions: readonly number[], takeovers: number, started: number): boolean {
    if (!this.#owns) return takeovers < this.#maxTakeovers + 1;
    return this.#owns(partitions[0]!) && Date.now() - started < this.#fencedRetryMs;
  }

  /** Gives up the leases of partitions the writer group moved elsewhere, after the work queued on them. */
  releasePartitions(partitions: Iterable<number>): void {
    for (const partition of partitions) {
      void this.#serialized([partition], async () => {
        const owned = this.#owned.get(partition);
        if (owned && !this.#owns?.(partition)) this.#drop(partition, owned);
      });
    }
  }

  /**
   * Checks and appends one request. Appends to one partition run one transaction at a time in
   * this process; the appends that queue up meanwhile go together in the next transaction
   * (group commit), so concurrent commands cost one transaction per round, not one each.
   */
  append(request: AppendRequest): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      let queue = this.#waiting.get(request.partition);
      if (!queue) {
        queue = [];
        this.#waiting.set(request.partition, queue);
      }
      queue.push({ request, resolve, reject });
      if (queue.length === 1) this.#scheduleDrain(request.partition);
    });
  }

  /**
   * Checks and appends requests for several streams as one transaction through
   * `PartitionLease.appendWith` (all or none); it waits for, and holds, every partition involved.
   */
  appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const partitions = [...new Set(requests.map((r) => r.partition))].sort((a, b) => a - b);
    return this.#serialized(partitions, async () => {
      try {
        return await this.#appendMany(requests, partitions);
      } finally {
        // Partitions an appendMany borrowed go back to their owners (who claim them back).
        if (this.#owns) for (const p of partitions) if (!this.#owns(p) && this.#owned.has(p)) this.#drop(p, this.#owned.get(p)!);
      }
    });
  }

  /** Gives up every lease (on close). */
  async releaseAll(): Promise<void> {
    const owned = [...this.#owned.values()];
    this.#owned.clear();
    await Promise.allSettled(owned.map((o) => o.lease.release()));
  }

  /** Invariant: a partition with waiting appends has exactly one drain queued. */
  #scheduleDrain(partition: number): void {
    void this.#serialized([partition], () => this.#drain(partition));
  }

  /** Takes the waiting appends of a partition (up to a transaction's worth) and appends them together. */
  async #drain(partition: number): Promise<void> {
    const queue = this.#waiting.get(partition) ?? [];
    const limits = this.#driver.appendLimits;
    let bytes = 0;
    let take = 0;
    while (take < queue.length && take < limits.maxAppends) {
      bytes += requestBytes(queue[take]!.request);
      if (take > 0 && bytes > limits.maxBytes) break;
      take++;
    }
    const batch = queue.splice(0, take);
    // A drain queued twice for one queue (a push while the last one ran, then its own
    // reschedule) finds it empty: nothing to do, and above all no queue of others to drop.
    if (batch.length === 0) {
      if (this.#waiting.get(partition) === queue) this.#waiting.delete(partition);
      return;
    }
    let deferred: Waiting[] = [];
    try {
      deferred = await this.#appendGroup(partition, batch);
    } catch (error) {
      for (const w of batch) w.reject(error);
    } finally {
      // Appends that must wait for the outcome of another one in this batch go first next time.
      queue.unshift(...deferred);
      // Only our own queue: another one may have been made meanwhile, with its own drain
      // queued and appends waiting in it (deleting that one stranded them: routed appends on
      // Pulsar waited forever).
      if (queue.length === 0) {
        if (this.#waiting.get(partition) === queue) this.#waiting.delete(partition);
      } else this.#scheduleDrain(partition);
    }
  }

  /**
   * Checks each waiting append against the index (and against the appends before it in the
   * batch), appends those that pass in one transaction, settles each one, and returns the
   * appends that depend on another one of this batch (same stream, or same event id): they are
   * checked again once that one's outcome is known, so a conflict is only ever reported
   * against what is committed.
   */
  async #appendGroup(partition: number, batch: Waiting[]): Promise<Waiting[]> {
    const driver = this.#driver;
    let candidates = batch;
    const started = Date.now();
    for (let takeovers = 0; ; takeovers++) {
      if (this.#owns && !this.#owns(partition)) {
        const owned = this.#owned.get(partition);
        if (owned) this.#drop(partition, owned);
        for (const w of candidates) w.reject(new NotOwnerError(partition));
        return [];
      }
      const fresh = !this.#owned.has(partition);
      const owned = await this.#claimOrPause(partition, [partition], takeovers, started);
      if (!owned) continue;
      if (!fresh && owned.index.through !== owned.through) {
        // Another writer appended since our claim (a read saw it): claim back before trying.
        this.#drop(partition, owned);
        continue;
      }
      const accepted: { waiting: Waiting; checked: AppendRequest & { expectedVersion: number } }[] = [];
      const deferred: Waiting[] = [];
      const touched = new Set<string>();
      const batchIds = new Set<string>();
      const settled = new Set<Waiting>();
      let stale = false;
      for (const waiting of candidates) {
        const { request } = waiting;
        if (touched.has(request.streamId) || request.events.some((e) => batchIds.has(e.id))) {
          deferred.push(waiting);
          continue;
        }
        const current = owned.index.version(request.streamId);
        if (!matchesExpectedVersion(request.expectedVersion, current)) {
          // A lease held from before may be stale: another process may have taken the partition
          // and written since. Only a check against a fresh claim can say "conflict" — unless
          // the caller is behind even our index, which holds committed events only.
          if (!fresh && !conflictIsCertain(request.expectedVersion, current)) {
            stale = true;
            break;
          }
          waiting.reject(new ExpectedVersionConflictError(request.streamId, request.expectedVersion, current, driver.name));
          settled.add(waiting);
          continue;
        }
        const duplicate = await storedIdError(this.#driver, owned.index, request);
        if (duplicate) {
          // The index only grows, so a stored id is stored whatever the lease's freshness.
          waiting.reject(duplicate);
          settled.add(waiting);
          continue;
        }
        touched.add(request.streamId);
        for (const e of request.events) batchIds.add(e.id);
        // The lease gets the exact version it appends after, so it can number the events.
        accepted.push({ waiting, checked: { ...request, expectedVersion: current } });
      }
      if (stale) {
        this.#drop(partition, owned);
        candidates = candidates.filter((w) => !settled.has(w));
        continue;
      }
      if (accepted.length === 0) return deferred;
      try {
        const results = await owned.lease.append(accepted.map((a) => a.checked));
        if (results.length !== accepted.length)
          throw new DriverError(driver.name, 'the lease returned a result per request it was not given');
        accepted.forEach((a, i) => {
          this.#record(owned, a.checked, results[i]!);
          a.waiting.resolve(results[i]!);
        });
        this.#maybeCheckpoint(owned);
        return deferred;
      } catch (error) {
        // Fenced, or an outcome we cannot know: either way our index may be stale. Forget the
        // lease; the next claim reads what happened from the log itself.
        this.#drop(partition, owned);
        if (
          error instanceof PartitionFencedError &&
          (this.#mayRetry([partition], takeovers, started) || this.#owns?.(partition) === false)
        ) {
          // (A partition no longer ours goes round once more, to fail with NotOwnerError.)
          candidates = [...accepted.map((a) => a.waiting), ...deferred];
          continue;
        }
        for (const a of accepted) a.waiting.reject(error);
        return deferred;
      }
    }
  }

  async #appendMany(requests: readonly AppendRequest[], partitions: readonly number[]): Promise<AppendResult[]> {
    const driver = this.#driver;
    const started = Date.now();
    for (let takeovers = 0; ; takeovers++) {
      if (this.#owns && !this.#owns(partitions[0]!)) throw new NotOwnerError(partitions[0]!);
      const fresh = new Set(partitions.filter((p) => !this.#owned.has(p)));
      const owned = new Map<number, OwnedPartition>();
      for (const partition of partitions) {
        const claimed = await this.#claimOrPause(partition, partitions, takeovers, started);
        if (!claimed) break;
        owned.set(partition, claimed);
      }
      if (owned.size < partitions.length) {
        // Partitions borrowed for this call go back until the next try.
        for (const p of fresh) if (owned.has(p)) this.#drop(p, owned.get(p)!);
        continue;
      }
      const overtaken = partitions.filter((p) => !fresh.has(p) && owned.get(p)!.index.through !== owned.get(p)!.through);
      if (overtaken.length > 0) {
        // As in `append`: another writer appended there since our claim.
        for (const p of overtaken) this.#drop(p, owned.get(p)!);
        continue;
      }
      const checked: (AppendRequest & { expectedVersion: number })[] = [];
      const batchIds = new Set<string>();
      let stale = false;
      for (const request of requests) {
        const o = owned.get(request.partition)!;
        const current = o.index.version(request.streamId);
        if (!matchesExpectedVersion(request.expectedVersion, current)) {
          // As in `append`: only a fresh claim can say "conflict", unless it is certain.
          if (!fresh.has(request.partition) && !conflictIsCertain(request.expectedVersion, current)) {
            this.#drop(request.partition, o);
            stale = true;
            break;
          }
          throw new ExpectedVersionConflictError(request.streamId, request.expectedVersion, current, driver.name);
        }
        const duplicate = await storedIdError(this.#driver, o.index, request);
        if (duplicate) throw duplicate;
        for (const event of request.events) {
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
        else if (driver.appendAcross) results = await driver.appendAcross([lead!, ...rest], checked);
        else throw new InvalidArgumentError(`the ${driver.name} backend cannot append to several partitions atomically`);
        if (results.length !== checked.length)
          throw new DriverError(driver.name, 'the lease returned a result per request it was not given');
        checked.forEach((request, i) => {
          this.#record(owned.get(request.partition)!, request, results[i]!);
        });
        for (const o of owned.values()) this.#maybeCheckpoint(o);
        return results;
      } catch (error) {
        // Fenced, or an outcome we cannot know: forget every lease involved (see `append`).
        for (const [partition, o] of owned) this.#drop(partition, o);
        if (
          error instanceof PartitionFencedError &&
          (this.#mayRetry(partitions, takeovers, started) || this.#owns?.(partitions[0]!) === false)
        )
          continue;
        throw error;
      }
    }
  }

  /** Adds an append the lease confirmed to the partition's index. */
  #record(owned: OwnedPartition, request: AppendRequest & { expectedVersion: number }, result: AppendResult): void {
    let version = request.expectedVersion;
    request.events.forEach((event, i) => {
      owned.index.add({ id: event.id, streamId: request.streamId, version: ++version, position: result.positions[i]! });
    });
    owned.through = owned.index.through;
  }

  /**
   * Writes a checkpoint of the partition's index through the lease once the index has grown by
   * `indexCheckpointEvents` since the last one: a delta, or a full one when the index has grown
   * by a quarter since the last full one (`PartitionIndex.checkpointDue`). So a cold start reads
   * at most about `indexCheckpointEvents` events of tail, and the bytes written stay a small
   * multiple of the index's size. In the background, queued on the lease behind the append just
   * made; a failure waits for the next interval, and a failed full one is not taken as the base
   * of later deltas (a fenced lease fails the next append, which claims again as usual).
   */
  #maybeCheckpoint(owned: OwnedPartition): void {
    const write = owned.lease.writeIndexCheckpoint?.bind(owned.lease);
    const index = owned.index;
    if (!write || !this.#driver.readIndexCheckpoints) return;
    const kind = index.checkpointDue(this.#driver.indexCheckpointEvents ?? DEFAULT_CHECKPOINT_EVENTS);
    if (!kind) return;
    const { bytes, failed } = index.checkpoint(kind);
    write(bytes, kind).catch(failed);
  }

  /**
   * Claims the partition; a claim fenced by racing claimers (the driver already tried a few
   * times) pauses and returns undefined when the append may take over again, so the caller
   * goes round once more instead of seeing `PartitionFencedError`.
   */
  async #claimOrPause(
    partition: number,
    partitions: readonly number[],
    takeovers: number,
    started: number,
  ): Promise<OwnedPartition | undefined> {
    try {
      return await this.#claim(partition);
    } catch (error) {
      if (!(error instanceof PartitionFencedError)) throw error;
      if (!this.#mayRetry(partitions, takeovers, started) && this.#owns?.(partitions[0]!) !== false) throw error;
      // At least 100 ms, random and growing with each try: claimers that fenced each other
      // spread out (on Pulsar 4.0.7 a storm of fencing claims can deadlock the broker).
      await sleep(100 + Math.random() * Math.min(1000, 100 * (takeovers + 1)));
      return undefined;
    }
  }

  async #claim(partition: number): Promise<OwnedPartition> {
    const owned = this.#owned.get(partition);
    if (owned) return owned;
    const lease = await this.#driver.claimPartition(partition);
    const index = this.#indexes.of(partition);
    // Catch up to what was committed when the claim took effect. Nobody else can commit to
    // the partition while we hold it, so after this the index is the truth.
    try {
      if (lease.caughtUpTo !== undefined) await index.catchUp(this.#driver, lease.caughtUpTo);
    } catch (error) {
      await lease.release().catch(() => undefined);
      throw error;
    }
    const next: OwnedPartition = { lease, index, through: index.through };
    this.#owned.set(partition, next);
    return next;
  }

  #drop(partition: number, owned: OwnedPartition): void {
    if (this.#owned.get(partition) !== owned) return;
    this.#owned.delete(partition);
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
