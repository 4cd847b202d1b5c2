import type { StoredEvent } from './driver.ts';

type ReadPage = (partition: number, after: bigint | undefined) => Promise<readonly StoredEvent[]>;

/**
 * The pages a subscription reads, with one page per partition read ahead: a catch-up then waits
 * on a partition's next page while it handles the one before (and reads every partition's page
 * of a round at once), instead of one broker round trip after another. A page read ahead is used
 * only if the position is still the one it was read after (a seek or a partly handled page
 * moves it).
 */
export class PartitionPages {
  readonly #read: ReadPage;
  readonly #ahead = new Map<number, { after: bigint | undefined; page: Promise<readonly StoredEvent[]> }>();

  constructor(read: ReadPage) {
    this.#read = read;
  }

  /** The page after `after`: the one read ahead from there, else read now. Never an unhandled rejection. */
  next(partition: number, after: bigint | undefined): { page: Promise<readonly StoredEvent[]>; readAhead: boolean } {
    const ahead = this.#ahead.get(partition);
    this.#ahead.delete(partition);
    if (ahead && ahead.after === after) return { page: ahead.page, readAhead: true };
    return { page: this.#start(partition, after), readAhead: false };
  }

  /** Starts reading the page after `after`, for the next `next(partition, after)`. */
  readAhead(partition: number, after: bigint): void {
    this.#ahead.set(partition, { after, page: this.#start(partition, after) });
  }

  clear(): void {
    this.#ahead.clear();
  }

  #start(partition: number, after: bigint | undefined): Promise<readonly StoredEvent[]> {
    const page = this.#read(partition, after);
    // Awaited later, or dropped (stop, seek): a failure must not surface as unhandled meanwhile.
    page.catch(() => undefined);
    return page;
  }
}
