// Fencing a partition's earlier owner: abort the open transactions that ack on its subscription.
import type { PulsarAdmin } from '../admin.ts';
import type { TransactionCoordinators, TxnId } from '../client/transactions.ts';

/** What `GET /admin/v3/transactions/slowTransactions/0` lists of each open transaction. */
interface OpenTransaction {
  readonly status?: string;
  /** topic → subscription → pending-ack stats. */
  readonly ackedPartitions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/**
 * Aborts every open transaction (of any instance) that acks on `subscription` of `topic`, and
 * returns how many. Pulsar has no producer fencing for transactions, and its dispatcher skips
 * the entries another transaction's pending acks hold, so without this a new owner of a
 * partition (after a crash or a Failover switch) would go on past the dead owner's batch and
 * get it back out of order once the coordinator times that transaction out. Aborting it is
 * safe: a transaction commits whole or not at all, and an owner whose transaction was aborted
 * fails its commit and redoes the batch (docs/architecture/pulsar.md#projector).
 */
export async function abortOpenTransactions(
  admin: PulsarAdmin,
  coordinators: TransactionCoordinators,
  topic: string,
  subscription: string,
): Promise<number> {
  const open = await admin.json<Record<string, OpenTransaction> | null>('transactions/slowTransactions/0', 'v3');
  let aborted = 0;
  for (const [id, txn] of Object.entries(open ?? {})) {
    if (txn.status !== 'OPEN' || txn.ackedPartitions?.[topic]?.[subscription] === undefined) continue;
    const parsed = parseTxnId(id);
    if (!parsed) continue;
    // Ended meanwhile (committed, aborted, timed out): nothing left to fence.
    await coordinators.abort(parsed).then(
      () => aborted++,
      () => undefined,
    );
  }
  return aborted;
}

/** `(most,least)`, as the admin API prints a transaction id. */
function parseTxnId(id: string): TxnId | undefined {
  const match = /^\((\d+),(\d+)\)$/.exec(id);
  return match ? { mostBits: BigInt(match[1]!), leastBits: BigInt(match[2]!) } : undefined;
}
