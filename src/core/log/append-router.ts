import { randomUUID } from 'node:crypto';
import type { AppendRequest, AppendResult, AppendRouting, PartitionOwnerDriver, RoutedBytes, RoutingMember } from '../driver.ts';
import { DriverError, StoreClosedError } from '../errors.ts';
import { partitionOf } from '../partition.ts';
import type { PartitionIndexes } from './partition-index.ts';
import { NotOwnerError, PartitionOwners } from './partition-owners.ts';
import { decodeReply, decodeRequest, encodeReply, encodeRequest, type RoutedRequest } from './routed-messages.ts';

export interface AppendRouterOptions {
  /**
   * How long a routed append waits for its owner's reply before it sends the request again
   * (same event ids, so a request applied twice is recognised as an exact retry). Twice this
   * without a reply is a `DriverError`: outcome unknown, retrying with the same ids is safe.
   * Default 30000 ms (above a session timeout plus a takeover).
   */
  readonly replyTimeoutMs?: number;
}

interface PendingReply {
  readonly resolve: (results: readonly AppendResult[]) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Stable partition ownership with routed appends, for every log backend with `routing`.
 *
 * The writer processes of a store form a group (the backend's: a Kafka consumer group over the
 * requests topic, a Pulsar Failover subscription); the group gives each partition to one live
 * writer. An append to a partition this process owns goes straight through its lease
 * (partition-owners.ts: group commit, version check against the index). An append to any other
 * partition is sent to the requests topic's partition of the same number; its owner decodes it,
 * appends it through its own lease (in the same group commit as its local appends) and sends
 * the outcome — positions, or the typed error — to the reply address in the request.
 *
 * - Nothing is applied twice: a request is acknowledged (its offset committed) after it is
 *   answered; the next owner after a crash may apply it again, and the core's event-id check
 *   refuses the second copy, which the caller's exact-retry check turns into the first one's
 *   success. The same holds for a request sent again after a reply timed out.
 * - A lease fenced because the group moved the partition fails with `NotOwnerError`, and the
 *   append is routed to the new owner: `PartitionFencedError` does not reach callers.
 * - `appendMany` goes to the owner of its lowest partition, which borrows the others for one
 *   transaction (claiming them fences their owners, who claim them back on their next append).
 *   Atomic across owners, at the cost of two claims per borrowed partition.
 * Costs: a routed append is one produce, one fetch by the owner, the owner's transaction, one
 * produce of the reply and one fetch by the caller (bench: `--suite scale`).
 */
export class AppendRouter {
  readonly #driver: PartitionOwnerDriver;
  readonly #routing: AppendRouting;
  readonly #owners: PartitionOwners;
  readonly #replyTimeoutMs: number;
  #owned: ReadonlySet<number> = new Set();
  #member: Promise<RoutingMember> | undefined;
  readonly #pending = new Map<string, PendingReply>();
  #closed = false;

  constructor(driver: PartitionOwnerDriver, routing: AppendRouting, indexes: PartitionIndexes, options: AppendRouterOptions = {}) {
    this.#driver = driver;
    this.#routing = routing;
    this.#replyTimeoutMs = options.replyTimeoutMs ?? 30_000;
    this.#owners = new PartitionOwners(driver, indexes, { owns: (p) => this.#owned.has(p) });
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    const member = await this.#join();
    for (;;) {
      if (this.#owned.has(request.partition)) {
        try {
          return await this.#owners.append(request);
        } catch (error) {
          if (!(error instanceof NotOwnerError)) throw error;
          continue; // the group moved it meanwhile: route it
        }
      }
      const [result] = await this.#route(member, request.partition, { many: false, requests: [request] });
      return result!;
    }
  }

  async appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const member = await this.#join();
    const lead = Math.min(...requests.map((r) => r.partition));
    for (;;) {
      if (this.#owned.has(lead)) {
        try {
          return await this.#owners.appendMany(requests);
        } catch (error) {
          if (!(error instanceof NotOwnerError)) throw error;
          continue;
        }
      }
      return [...(await this.#route(member, lead, { many: true, requests }))];
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const member = this.#member;
    this.#member = undefined;
    for (const pending of this.#pending.values()) pending.reject(new StoreClosedError());
    this.#pending.clear();
    await member?.then((m) => m.leave()).catch(() => undefined);
    await this.#owners.releaseAll();
  }

  #join(): Promise<RoutingMember> {
    if (this.#closed) return Promise.reject(new StoreClosedError());
    this.#member ??= this.#routing
      .join({
        owned: (partitions) => {
          const before = this.#owned;
          this.#owned = new Set(partitions);
          this.#owners.releasePartitions([...before].filter((p) => !partitions.has(p)));
        },
        requests: (partition, batch) => this.#serve(partition, batch),
        reply: (bytes) => this.#reply(bytes),
      })
      .catch((error: unknown) => {
        this.#member = undefined;
        throw error;
      });
    return this.#member;
  }

  /** Sends a request to the owner and waits for the reply, sending it once more after a timeout. */
  async #route(member: RoutingMember, partition: number, body: Pick<RoutedRequest, 'many' | 'requests'>): Promise<readonly AppendResult[]> {
    for (let attempt = 1; ; attempt++) {
      const id = randomUUID();
      const reply = new Promise<readonly AppendResult[]>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
      // The answer can come before our send's receipt (a process resumed after SIGSTOP gets both
      // at once): a typed error then rejects `reply` before the race below watches it, which
      // Node treats as unhandled and kills the process. The race still gets the rejection.
      reply.catch(() => undefined);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.#replyTimeoutMs);
      });
      try {
        await member.send(partition, encodeRequest({ id, replyTo: member.address, ...body }));
        const outcome = await Promise.race([reply, timeout]);
        if (outcome !== 'timeout') return outcome;
      } finally {
        clearTimeout(timer);
        this.#pending.delete(id);
      }
      if (attempt === 2) {
        throw new DriverError(
          this.#driver.name,
          `no writer answered an append routed to partition ${partition} within ${2 * this.#replyTimeoutMs} ms; its outcome is unknown (retrying with the same event ids is safe)`,
        );
      }
    }
  }

  #reply(bytes: Uint8Array): void {
    let reply: ReturnType<typeof decodeReply>;
    try {
      reply = decodeReply(bytes, this.#driver.name);
    } catch {
      return; // not ours to understand: nobody waits for it
    }
    const pending = this.#pending.get(reply.id);
    if (!pending) return; // answered already, or given up on
    this.#pending.delete(reply.id);
    if ('results' in reply) pending.resolve(reply.results);
    else pending.reject(reply.error);
  }

  /**
   * Applies requests sent to a partition this process owns, all at once through the group
   * commit (they keep their order in its queue), and answers each. Returns the offset the
   * partition's requests are done up to: before the first one that found the partition gone.
   */
  async #serve(partition: number, batch: readonly RoutedBytes[]): Promise<bigint> {
    const member = await this.#member;
    const outcomes = await Promise.all(batch.map((message) => this.#apply(partition, message.bytes, member)));
    const lost = outcomes.indexOf('not-owner');
    return lost === -1 ? batch[batch.length - 1]!.offset + 1n : batch[lost]!.offset;
  }

  async #apply(partition: number, bytes: Uint8Array, member: RoutingMember | undefined): Promise<'done' | 'not-owner'> {
    let request: RoutedRequest;
    try {
      request = decodeRequest(bytes);
      this.#checkPlacement(partition, request);
    } catch {
      return 'done'; // malformed: there is no reply address to trust, and no retry makes it well-formed
    }
    let answer: Parameters<typeof encodeReply>[0];
    try {
      const results = request.many ? await this.#owners.appendMany(request.requests) : [await this.#owners.append(request.requests[0]!)];
      answer = { id: request.id, results };
    } catch (error) {
      if (error instanceof NotOwnerError) return 'not-owner';
      answer = { id: request.id, error };
    }
    await member?.reply(request.replyTo, encodeReply(answer)).catch(() => undefined);
    return 'done';
  }

  /** A request must name streams where they live, and come to the partition that leads it. */
  #checkPlacement(partition: number, request: RoutedRequest): void {
    const driver = this.#driver;
    for (const r of request.requests) {
      const home = driver.partitionOf ? driver.partitionOf(r.streamId) : partitionOf(r.streamId, driver.partitions);
      if (r.partition !== home) throw new DriverError(driver.name, `stream ${r.streamId} is not in partition ${r.partition}`);
    }
    if (Math.min(...request.requests.map((r) => r.partition)) !== partition) throw new DriverError(driver.name, 'misrouted request');
    if (!request.many && request.requests.length !== 1) throw new DriverError(driver.name, 'a single append with several requests');
  }
}
