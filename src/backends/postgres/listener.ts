import type pg from 'pg';
import { quoteIdent } from './names.ts';

/**
 * LISTEN on a connection of its own (a pooled connection would hand the LISTEN to whoever
 * checks it out next). Waiters resolve on the next notification of the channel, or when the
 * connection breaks (they re-check and poll; the next wait reconnects).
 */
export class Listener {
  readonly #connect: () => pg.Client;
  readonly #channel: string;
  #client: Promise<pg.Client> | undefined;
  #waiters = new Set<() => void>();
  #closed = false;

  constructor(connect: () => pg.Client, channel: string) {
    this.#connect = connect;
    this.#channel = channel;
  }

  /**
   * Resolves on the next notification, after `timeoutMs`, or when `signal` aborts. The
   * LISTEN is in place when `armed` resolves, so a caller can check for work after it
   * without missing a notification in between.
   */
  wait(timeoutMs: number, signal?: AbortSignal): { armed: Promise<void>; fired: Promise<void> } {
    let done!: () => void;
    const fired = new Promise<void>((resolve) => {
      done = resolve;
    });
    const timer = setTimeout(finish, timeoutMs);
    function finish(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    }
    const waiter = (): void => {
      this.#waiters.delete(waiter);
      finish();
    };
    fired.then(() => this.#waiters.delete(waiter));
    if (signal?.aborted) finish();
    signal?.addEventListener('abort', finish, { once: true });
    this.#waiters.add(waiter);
    const armed = this.#listening().then(
      () => undefined,
      () => waiter(), // no listener: the caller polls
    );
    return { armed, fired };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wakeAll();
    const client = this.#client;
    this.#client = undefined;
    await client?.then((c) => c.end()).catch(() => undefined);
  }

  #listening(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new Error('closed'));
    this.#client ??= (async () => {
      const client = this.#connect();
      const broken = (): void => {
        if (this.#client === attempt) this.#client = undefined;
        client.end().catch(() => undefined);
        this.#wakeAll();
      };
      client.on('error', broken);
      client.on('end', broken);
      client.on('notification', (message) => {
        if (message.channel === this.#channel) this.#wakeAll();
      });
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.#channel)}`);
      return client;
    })();
    const attempt = this.#client;
    attempt.catch(() => {
      if (this.#client === attempt) this.#client = undefined;
    });
    return attempt;
  }

  #wakeAll(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
