import type { Message } from './client/consumer.ts';
import { entryOffset } from './records.ts';

/** Payload bytes the cache holds at most, over all partitions. */
const MAX_BYTES = 32 * 1024 * 1024;

/**
 * Recently read entries of the events partitions, by (partition, entry offset): a log never
 * changes what it holds, so a cached entry is the truth. `readAt` (a stream's events at the
 * offsets the core's index knows) is served from it without a reader round trip, which opening a
 * reader at an arbitrary entry costs (lookup, subscribe, GetLastMessageId). Oldest out first.
 */
export class EntryCache {
  readonly #entries = new Map<string, Message>();
  #bytes = 0;

  get(partition: number, entry: bigint): Message | undefined {
    return this.#entries.get(`${partition}:${entry}`);
  }

  add(partition: number, message: Message): void {
    const key = `${partition}:${entryOffset(message.messageId)}`;
    if (this.#entries.has(key)) return;
    this.#entries.set(key, message);
    this.#bytes += message.payload.byteLength;
    for (const [k, m] of this.#entries) {
      if (this.#bytes <= MAX_BYTES) break;
      this.#entries.delete(k);
      this.#bytes -= m.payload.byteLength;
    }
  }
}
