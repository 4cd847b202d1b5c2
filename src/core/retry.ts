import { sleep } from './sleep.ts';
import { DriverError } from './errors.ts';

export type Attempted<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown; readonly attempts: number };

/**
 * Runs `fn`, retrying a failure up to `retries` times with exponential backoff
 * (`delayMs`, then twice that, …). Gives up early when `signal` aborts. Never throws: the
 * caller decides what a final failure means (stop a subscription, dead-letter an event).
 */
export async function withRetries<T>(
  fn: () => T | Promise<T>,
  options: { readonly retries: number; readonly delayMs: number; readonly signal: AbortSignal },
): Promise<Attempted<T>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { ok: true, value: await fn() };
    } catch (error) {
      if (attempt >= options.retries || options.signal.aborted) return { ok: false, error, attempts: attempt + 1 };
      await sleep(options.delayMs * 2 ** attempt, options.signal);
    }
  }
}

/**
 * Runs a driver operation of a long-running loop (subscription, group consumer) through a
 * backend outage: a `DriverError` (connection lost, broker restarting…) is reported to `onError`
 * and retried with backoff up to 5 s, for as long as it takes, until `signal` aborts (then the
 * last error is thrown). Typed errors (closed store, bad input, decode errors) are thrown at once.
 */
export async function untilAvailable<T>(
  fn: () => Promise<T>,
  options: { readonly signal: AbortSignal; readonly onError: (error: unknown) => void },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!(error instanceof DriverError) || options.signal.aborted) throw error;
      options.onError(error);
      await sleep(Math.min(5000, 50 * 2 ** attempt), options.signal);
      if (options.signal.aborted) throw error;
    }
  }
}
