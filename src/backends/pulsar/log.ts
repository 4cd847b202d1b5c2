import { randomUUID } from 'node:crypto';
import type { PulsarClient } from './client/client.ts';
import type { Consumer, Message } from './client/consumer.ts';
import { compareMessageIds, EARLIEST, type MessageId } from './client/message-id.ts';
import { ENTRY_SPAN, entryOffset, entryStart } from './records.ts';
import { isRetriable } from './client/errors.ts';
import { sleep } from '../../core/sleep.ts';

/** Messages of one topic from an offset (see records.ts), and where the next read goes on. */
export interface MessagePage {
  readonly messages: readonly Message[];
  /** Past every entry this page covered. */
  readonly next: bigint;
  /** Nothing readable lay past this page when it was read. */
  readonly end: boolean;
}

/** A non-durable reader left where its last page ended, for the next page to go on from. */
interface Reader {
  readonly consumer: Consumer;
  /** Offset of the next entry it delivers. */
  next: bigint;
  /** The last message it delivered: a page that starts inside that entry gets it again from here. */
  last: Message | undefined;
  /** The topic's last message id when last asked; ahead of `next`, messages are on their way. */
  end: MessageId | undefined;
  /** Its receiver queue: what the broker pushes ahead of the reads. */
  readonly queue: number;
}

/** Idle readers kept per topic: a few concurrent scans (a catch-up, a subscription) each keep theirs. */
const POOL = 4;
/** Receiver queue of a reader made for pages of up to this many messages (a scan's); smaller pages get one as small as they are. */
const QUEUE = 500;
/** A message the broker said exists that takes longer than this to arrive fails the read. */
const RECEIVE_TIMEOUT_MS = 30_000;
/** How long a read the broker refused with a retriable error is tried again (see `page`). */
const READ_RETRY_MS = 15_000;
/** Tries a retriable read gets whatever the deadline says. */
const READ_RETRIES = 3;

const isNone = (id: MessageId): boolean => id.entryId > 1n << 62n || id.ledgerId > 1n << 62n;

/**
 * Reads of Pulsar topics with non-durable readers (no subscription state on the broker). A page
 * reads up to the topic's last message id (GetLastMessageId) as of its start; a reader that
 * ended where the next page starts is reused, anything else opens one at the start entry.
 */
export class PulsarLog {
  readonly #client: PulsarClient;
  readonly #idle = new Map<string, Reader[]>();
  readonly #compacted = new Set<string>();
  readonly #counter: { received: number } | undefined;
  #closed = false;

  /** `counter` counts the messages the broker delivers to these readers. */
  constructor(client: PulsarClient, counter?: { received: number }) {
    this.#client = client;
    this.#counter = counter;
  }

  /**
   * Up to `max` messages of `topic` from the entry that holds offset `from` (0n: from the start).
   * A read is free of side effects, so one the broker refused for a moment (a retriable error:
   * the topic changing hands after a fence answers MetadataError "Consumer not found" or
   * ServiceNotReady) is read again on a fresh reader, for up to READ_RETRY_MS.
   */
  async page(topic: string, from: bigint, max: number): Promise<MessagePage> {
    return this.#retrying(() => this.#page(topic, from, max));
  }

  async #retrying<T>(read: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + READ_RETRY_MS;
    for (let attempt = 1, wait = 50; ; attempt++, wait = Math.min(wait * 2, 1000)) {
      try {
        return await read();
      } catch (error) {
        // At least READ_RETRIES tries: a read that timed out (a reader the broker stopped feeding
        // while the topic changed hands: CI saw a message GetLastMessageId named not arrive in
        // 30 s) has used up the deadline by itself, and a fresh reader gets it.
        if (this.#closed || !isRetriable(error) || (attempt >= READ_RETRIES && Date.now() + wait > deadline)) throw error;
        await sleep(wait);
      }
    }
  }

  async #page(topic: string, from: bigint, max: number): Promise<MessagePage> {
    const reader = await this.#take(topic, from, max);
    try {
      const messages: Message[] = [];
      // A page that starts inside the entry the reader delivered last gets that entry first.
      if (reader.last !== undefined && from >= entryOffset(reader.last.messageId) && from < reader.next) {
        messages.push(reader.last);
      }
      let end = false;
      let asked = false;
      while (messages.length < max) {
        if (reader.end === undefined || entryOffset(reader.end) < reader.next) {
          // Reached the end this page asked for: the scan stops here (one GetLastMessageId per page).
          if (asked) {
            end = true;
            break;
          }
          asked = true;
          const last = await reader.consumer.getLastMessageId();
          reader.end = isNone(last) ? undefined : last;
          if (reader.end === undefined || entryOffset(reader.end) < reader.next) {
            end = true;
            break;
          }
        }
        const message = await reader.consumer.receive(RECEIVE_TIMEOUT_MS);
        const at = entryOffset(message.messageId);
        if (at < reader.next) continue; // already delivered (a resubscribe can go back)
        messages.push(message);
        reader.last = message;
        reader.next = at + ENTRY_SPAN;
      }
      this.#give(topic, reader);
      return { messages, next: reader.next, end };
    } catch (error) {
      await reader.consumer.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * The id of the last message of `topic` readers can get (undefined: none). An open
   * transaction holds it before its first message, whatever lies after (the broker's
   * maxReadPosition; checked on 4.0.7), so it passes an entry only once everything before that
   * entry is committed or aborted.
   */
  async lastMessageId(topic: string): Promise<MessageId | undefined> {
    const last = await this.#lastId(topic);
    return isNone(last) ? undefined : last;
  }

  /** The last message of `topic`, or undefined when it has none. */
  async lastMessage(topic: string): Promise<Message | undefined> {
    const last = await this.#lastId(topic);
    if (isNone(last)) return undefined;
    const page = await this.page(topic, entryOffset(last), 1);
    return page.messages.find((m) => compareMessageIds({ ...m.messageId, batchIndex: -1 }, { ...last, batchIndex: -1 }) === 0);
  }

  #lastId(topic: string): Promise<MessageId> {
    return this.#retrying(async () => {
      const reader = await this.#take(topic, undefined, 1);
      try {
        const id = await reader.consumer.getLastMessageId();
        this.#give(topic, reader);
        return id;
      } catch (error) {
        await reader.consumer.close().catch(() => undefined);
        throw error;
      }
    });
  }

  /** Reads `topic` compacted from now on (the newest message per key, then the tail): for topics read as tables. */
  readCompacted(topic: string): void {
    this.#compacted.add(topic);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const readers = [...this.#idle.values()].flat();
    this.#idle.clear();
    await Promise.allSettled(readers.map((r) => r.consumer.close()));
  }

  /**
   * An idle reader positioned for `from` (any, when undefined) with a queue for pages of `max`,
   * else a new one at its entry. The queue is no larger than the page: a point read (`readAt`,
   * a look at the last message) has the broker push one message ahead, not a scan's 500.
   */
  async #take(topic: string, from: bigint | undefined, max: number): Promise<Reader> {
    const idle = this.#idle.get(topic) ?? [];
    const queue = Math.min(QUEUE, Math.max(1, max));
    const fits = (r: Reader): boolean =>
      from === undefined ||
      (r.queue >= queue &&
        (r.next === from ||
          (r.last !== undefined &&
            from >= entryOffset(r.last.messageId) &&
            from < r.next &&
            r.next === entryOffset(r.last.messageId) + ENTRY_SPAN)));
    const i = idle.findIndex(fits);
    if (i >= 0) return idle.splice(i, 1)[0]!;
    const start = from === undefined || from === 0n ? 0n : from - (from % ENTRY_SPAN);
    const consumer = await this.#client.subscribe({
      topic,
      subscription: `eventfold-reader-${randomUUID()}`,
      durable: false,
      startMessageId: start === 0n ? EARLIEST : entryStart(start),
      receiverQueueSize: queue,
      counter: this.#counter,
      readCompacted: this.#compacted.has(topic),
    });
    return { consumer, next: start, last: undefined, end: undefined, queue };
  }

  #give(topic: string, reader: Reader): void {
    if (this.#closed) {
      void reader.consumer.close().catch(() => undefined);
      return;
    }
    let idle = this.#idle.get(topic);
    if (!idle) {
      idle = [];
      this.#idle.set(topic, idle);
    }
    idle.push(reader);
    while (idle.length > POOL)
      void idle
        .shift()!
        .consumer.close()
        .catch(() => undefined);
  }
}
