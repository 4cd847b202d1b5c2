import { sleep } from './sleep.ts';

export type Attempted<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown; readonly attempts: number };

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
