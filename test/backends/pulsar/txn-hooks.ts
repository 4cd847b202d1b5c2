// Pause points for the Pulsar transaction tests, with no hook in the product: the client's
// TransactionCoordinators methods are wrapped on the prototype, in this process only (a worker
// process patches its own copy). Each returns a function that puts the original back.
import { TransactionCoordinators, type TxnId } from '../../../src/backends/pulsar/client/transactions.ts';

type Method = 'addPartitions' | 'commit';

function wrap(
  method: Method,
  around: (original: (txn: TxnId, ...rest: unknown[]) => Promise<void>) => (txn: TxnId, ...rest: unknown[]) => Promise<void>,
): () => void {
  const proto = TransactionCoordinators.prototype as unknown as Record<Method, (txn: TxnId, ...rest: unknown[]) => Promise<void>>;
  const original = proto[method];
  proto[method] = function (this: unknown, txn: TxnId, ...rest: unknown[]) {
    return around((t, ...r) => original.call(this, t, ...r))(txn, ...rest);
  };
  return () => {
    proto[method] = original;
  };
}

/** Runs `hook` before each END_TXN commit (after every send of the transaction got its receipt). */
export function beforeCommit(hook: (txn: TxnId) => Promise<void>): () => void {
  return wrap('commit', (original) => async (txn) => {
    await hook(txn);
    return original(txn);
  });
}

/** Runs `hook` after NEW_TXN, before the transaction's partitions are added and its messages sent. */
export function beforeSends(hook: (txn: TxnId) => Promise<void>): () => void {
  return wrap('addPartitions', (original) => async (txn, ...rest) => {
    await hook(txn);
    return original(txn, ...rest);
  });
}

/** END_TXN commit answers with `error` instead: after committing when `commitFirst`, else without sending it. */
export function commitFails(error: () => Error, commitFirst: boolean): () => void {
  return wrap('commit', (original) => async (txn) => {
    if (commitFirst) await original(txn);
    throw error();
  });
}
