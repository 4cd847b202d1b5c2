import type { PageReader } from '../log/scan.ts';
import type { Message } from './client/consumer.ts';
import type { EntryCache } from './entry-cache.ts';
import type { PulsarLog } from './log.ts';
import { ENTRY_SPAN, entryOffset } from './records.ts';

/** Messages a scan asks the log for per page. */
const PAGE_MESSAGES = 500;

/**
 * Pages of the events partitions for scans (`readPartition`). A scan that stops inside a page
 * (the core catches up 1,000 events at a time, a page is up to 500 messages) goes on, at its next
 * call, from the rest of that page in the entry cache, then from the reader the page left at its
 * end: a new reader there would receive the rest again (a cold start's 28-message tail was
 * received about ten times over). Every page read goes into the entry cache, for `readAt`.
 */
export class ScanPages {
  readonly #cache: EntryCache;
  /** Per partition, the entries of the last page read, in order, and where that page ended. */
  readonly #lastPages = new Map<number, { entries: bigint[]; next: bigint }>();

  constructor(cache: EntryCache) {
    this.#cache = cache;
  }

  reader(log: PulsarLog, topic: string, partition: number): PageReader<Message> {
    return async (from) => {
      const rest = this.#restOfLastPage(partition, from);
      // Not `end`: messages may have come since that page was read; the next call asks the log.
      if (rest) return { records: rest.records, next: rest.next, end: false };
      const page = await log.page(topic, from, PAGE_MESSAGES);
      for (const m of page.messages) this.#cache.add(partition, m);
      this.#lastPages.set(partition, { entries: page.messages.map((m) => entryOffset(m.messageId)), next: page.next });
      return { records: page.messages, next: page.next, end: page.end };
    };
  }

  /** The messages of the partition's last page from the entry holding `from` on, if that page holds it and the cache still has them. */
  #restOfLastPage(partition: number, from: bigint): { records: Message[]; next: bigint } | undefined {
    const last = this.#lastPages.get(partition);
    if (!last || last.entries.length === 0 || from < last.entries[0]! || from >= last.next) return undefined;
    const i = last.entries.findIndex((at) => at + ENTRY_SPAN > from);
    if (i < 0) return undefined;
    const records: Message[] = [];
    for (const at of last.entries.slice(i)) {
      const message = this.#cache.get(partition, at);
      if (!message) return undefined;
      records.push(message);
    }
    return { records, next: last.next };
  }
}
