// How the batch loop tells a failure to redo from one that stops the projector.
import { InvalidArgumentError, StoreClosedError } from '../../../core/errors.ts';

/** Thrown inside a batch when `stop()` cut a handler's retries short: abort, do not dead-letter. */
export const STOPPED: unique symbol = Symbol('stopped');

/** Errors no retry can fix (another instance holds our transactional id): the projector stops. */
const fatalErrors = new WeakSet<object>();

/** Marks `error` as fatal and returns it. */
export function fatal<T extends object>(error: T): T {
  fatalErrors.add(error);
  return error;
}

/** Whether `error` stops the projector instead of redoing the batch: bad input, a closed store or a `fatal` one. */
export function isFatal(error: unknown): boolean {
  return (
    error instanceof InvalidArgumentError ||
    error instanceof StoreClosedError ||
    (typeof error === 'object' && error !== null && fatalErrors.has(error))
  );
}
