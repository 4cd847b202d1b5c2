import type { AppendRequest, AppendResult } from '../../core/driver.ts';
import { AppendTooLargeError, DriverError, errorMessage, PartitionFencedError } from '../../core/errors.ts';
import { isRetriable, PULSAR as NAME } from './client/errors.ts';
import type { MessageId } from './client/message-id.ts';
import type { TransactionCoordinators, TxnId } from './client/transactions.ts';
import { type CommitPlan, PulsarPartitionLease } from './lease.ts';

export interface TransactionAppendContext {
  readonly coordinators: TransactionCoordinators;
  readonly names: { partition(p: number): string };
  /** How long the coordinator lets a transaction stay open before it aborts it. */
  readonly timeoutMs: number;
  /** Resolves once readers of the partition can get `id` (writers.ts). */
  readonly readable: (partition: number, id: MessageId) => Promise<void>;
}

/** Tries to start a transaction while the coordinator's connection fails in a retriable way. */
const START_TRIES = 3;

interface Part {
  readonly lease: PulsarPartitionLease;
  /** Indexes into the caller's requests, in order. */
  readonly indexes: number[];
  plan?: CommitPlan;
}

/**
 * `appendAcross` on Pulsar: one transaction, and in it each partition's usual commit message,
 * sent through that partition's own lease producer (ExclusiveWithFencing). Then END_TXN commit:
 * the coordinator makes all of them visible, or none.
 *
 * Why this holds under fencing (each point checked on a 4.0.7 standalone):
 * - A writer that claims one of the partitions before our send there fences our producer: that
 *   send fails, we abort, nothing is visible (`PartitionFencedError`: the core claims again and
 *   checks again).
 * - A claim between our sends and END_TXN does not stop the commit (Pulsar fences producers,
 *   not transactions): the commit goes through and our message lies before the claimer's
 *   marker. But the claimer cannot miss it: readers of a partition get nothing past the first
 *   message of an open transaction (the broker's maxReadPosition; GetLastMessageId stays before
 *   it too, whatever lies after), and a claim waits until its own marker is readable before it
 *   catches up (writers.ts). So the claim ends after our transaction did, and its catch-up,
 *   which reads up to its marker, reads our commit, or finds it aborted. The claim thus takes
 *   effect after our commit, and the new owner checks versions against it.
 * - A writer that dies before END_TXN leaves the transaction open until the coordinator
 *   aborts it (`timeoutMs`): until then the partitions' readers and claims wait; then nothing
 *   of it is visible.
 * - An END_TXN with no answer (timeout, lost connection) or an error is in doubt: the first
 *   partition's lease settles it as a lost receipt is settled (writers.ts): it claims that
 *   partition, and the claim returns once the transaction is decided there; its commit is
 *   then readable (the transaction committed, so all its commits are) or not (aborted, all
 *   are). Unknown even then: `DriverError`.
 *
 * Cost: NEW_TXN, ADD_PARTITION_TO_TXN and END_TXN round trips to the coordinator on top of one
 * send per partition (in parallel); a claim waits for open transactions on its partition.
 */
export async function appendInTransaction(
  ctx: TransactionAppendContext,
  leases: readonly PulsarPartitionLease[],
  requests: readonly AppendRequest[],
): Promise<AppendResult[]> {
  const parts = new Map<number, Part>();
  for (const lease of leases) {
    if (parts.has(lease.partition)) throw new DriverError(NAME, `appendAcross got two leases of partition ${lease.partition}`);
    parts.set(lease.partition, { lease, indexes: [] });
  }
  requests.forEach((request, i) => {
    const part = parts.get(request.partition);
    if (!part) {
      throw new DriverError(
        NAME,
        `an append to partition ${request.partition} went to leases of partitions ${[...parts.keys()].join(', ')}`,
      );
    }
    part.indexes.push(i);
  });
  // A lease with nothing to append is not part of the transaction.
  const sending = [...parts.values()].filter((p) => p.indexes.length > 0);
  if (sending.length === 0) return [];
  // Laid out (and checked against the per-commit limit) before the transaction starts.
  for (const part of sending) part.plan = part.lease.planCommit(part.indexes.map((i) => requests[i]!));
  return PulsarPartitionLease.inTurn(leases, () => transact(ctx, sending, requests.length));
}

async function transact(ctx: TransactionAppendContext, parts: readonly Part[], count: number): Promise<AppendResult[]> {
  const tc = ctx.coordinators;
  const killAll = (cause: unknown) => {
    for (const part of parts) part.lease.kill(cause);
  };
  let txn: TxnId | undefined;
  for (let attempt = 1; txn === undefined; attempt++) {
    let started: TxnId | undefined;
    try {
      started = await tc.begin(ctx.timeoutMs);
      await tc.addPartitions(
        started,
        parts.map((p) => ctx.names.partition(p.lease.partition)),
      );
      txn = started;
    } catch (error) {
      // Nothing was sent: nothing can become visible. A connection that just closed (a fenced
      // producer's broker closes the connection it shares with the coordinators) is retried.
      if (started !== undefined) await tc.abort(started).catch(() => undefined);
      if (!isRetriable(error) || attempt >= START_TRIES) {
        throw new DriverError(NAME, `appendAcross could not start a transaction: ${errorMessage(error)}`, error);
      }
    }
  }
  const sent = await Promise.allSettled(parts.map((p) => p.lease.sendInTransaction(p.plan!, txn)));
  const failed = sent.findIndex((s) => s.status === 'rejected');
  if (failed >= 0) {
    const cause = (sent[failed] as PromiseRejectedResult).reason as unknown;
    killAll(cause);
    // Never committed, so never visible: the abort only spares readers the wait for the timeout.
    await tc.abort(txn).catch(() => undefined);
    if (cause instanceof AppendTooLargeError) throw cause;
    throw new PartitionFencedError(NAME, parts[failed]!.lease.partition, cause);
  }
  const receipts = sent.map((s) => (s as PromiseFulfilledResult<{ at: MessageId; settle: () => Promise<MessageId | undefined> }>).value);
  const results = (ats: readonly MessageId[]): AppendResult[] => {
    const out: AppendResult[] = new Array(count);
    parts.forEach((part, k) => {
      part.plan!.results(ats[k]!).forEach((result, j) => {
        out[part.indexes[j]!] = result;
      });
    });
    return out;
  };
  try {
    await tc.commit(txn);
  } catch (error) {
    killAll(error);
    let stored: MessageId | undefined;
    try {
      stored = await receipts[0]!.settle();
    } catch (settleError) {
      throw new DriverError(
        NAME,
        `appendAcross: the transaction's commit failed and its outcome could not be read back (${errorMessage(settleError)}); first error: ${errorMessage(error)}`,
        error,
      );
    }
    if (stored === undefined) throw new PartitionFencedError(NAME, parts[0]!.lease.partition, error);
    // Committed after all (the answer was lost): the other partitions' commit markers may
    // still be on their way; wait for them so a read right after sees the append.
    await Promise.all(parts.map((p, k) => ctx.readable(p.lease.partition, receipts[k]!.at))).catch(() => undefined);
    return results(receipts.map((r, k) => (k === 0 ? stored : r.at)));
  }
  return results(receipts.map((r) => r.at));
}
