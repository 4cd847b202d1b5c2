// The cold read of a partition's index checkpoints (index-checkpoints.ts): from the END of its
// index partition, back in a few growing windows, never the whole topic. The managed ledger's
// layout (admin internal stats: its ledgers and their entry counts) turns "k entries before the
// end" into a message id, across ledger rollovers; each window is a bounded non-durable reader.
import { randomUUID } from 'node:crypto';
import type { IndexCheckpoints } from '../../core/driver.ts';
import { DriverError } from '../../core/errors.ts';
import type { PulsarAdmin } from './admin.ts';
import type { PulsarClient } from './client/client.ts';
import type { Message } from './client/consumer.ts';
import { PULSAR as NAME } from './client/errors.ts';
import { compareMessageIds, type MessageId } from './client/message-id.ts';
import { type Assembled, assemble, type FullRef, IP, isRef, latest, parseFullRef, refOf, toCheckpoints } from './index-checkpoints.ts';

/** Entries of the first window back from the end; each next one doubles, up to MAX_WINDOW. */
const FIRST_WINDOW = 8;
const MAX_WINDOW = 64;
/** Windows a cold read takes at most (then it gives up: the core scans the partition). */
export const MAX_HOPS = 16;
/** Messages a window's reader lets the broker push ahead (chunks are up to 1 MiB each). */
const QUEUE = 16;
const RECEIVE_TIMEOUT_MS = 30_000;

export interface IndexReaderContext {
  readonly client: PulsarClient;
  readonly admin: PulsarAdmin;
  /** Counts what the readers receive (PulsarDriver.messagesReceived). */
  readonly counter: { received: number };
}

export interface IndexRead {
  readonly checkpoints: IndexCheckpoints;
  /** Where the full checkpoint returned lies, for the deltas written after it. */
  readonly full: FullRef | undefined;
}

interface Ledger {
  readonly id: bigint;
  readonly entries: number;
}

/**
 * The last complete full checkpoint of an index partition and the last complete delta after it.
 * Window by window back from the end, until the messages read hold a complete full checkpoint,
 * or a complete delta whose full checkpoint (which it names, `IP.full`) is then read at once.
 * Torn checkpoints are skipped. Nothing found within MAX_HOPS windows: none (the core scans).
 */
export async function readIndexCheckpoints(ctx: IndexReaderContext, topic: string): Promise<IndexRead> {
  const ledgers = await ledgersOf(ctx.admin, topic);
  const total = ledgers.reduce((n, l) => n + l.entries, 0);
  let suffix: Message[] = [];
  let back = 0;
  let refTried = false;
  for (let hop = 0; hop < MAX_HOPS && back < total; hop++) {
    const size = Math.min(FIRST_WINDOW << Math.min(hop, 20), MAX_WINDOW, total - back);
    const start = fromEnd(ledgers, back + size - 1);
    const end = fromEnd(ledgers, back);
    const window = await readFrom(ctx, topic, start, size, end);
    const before = suffix[0]?.messageId;
    suffix = [...(before === undefined ? window : window.filter((m) => compareMessageIds(m.messageId, before) < 0)), ...suffix];
    back += size;
    const found = assemble(suffix);
    const { full, delta } = latest(found);
    if (full) return { checkpoints: toCheckpoints(full, delta), full: refOf(full) };
    const ref = delta && parseFullRef(delta.first.properties[IP.full]);
    if (delta && ref && !refTried) {
      refTried = true;
      const named = await readFull(ctx, topic, ref);
      if (named) return { checkpoints: toCheckpoints(named, delta), full: ref };
    }
  }
  return { checkpoints: { full: undefined, delta: undefined }, full: undefined };
}

/** The full checkpoint `ref` names, if it is still there, complete. */
async function readFull(ctx: IndexReaderContext, topic: string, ref: FullRef): Promise<Assembled | undefined> {
  const messages = await readFrom(ctx, topic, ref.at, ref.parts, undefined);
  const first = assemble(messages)[0];
  return first && isRef(first, ref) ? first : undefined;
}

/** Up to `count` messages from the entry `start` on (inclusive), stopping at `end` when given. */
async function readFrom(
  ctx: IndexReaderContext,
  topic: string,
  start: MessageId,
  count: number,
  end: MessageId | undefined,
): Promise<Message[]> {
  const consumer = await ctx.client.subscribe({
    topic,
    subscription: `eventfold-index-${randomUUID()}`,
    durable: false,
    // Batch index -2 sorts before the entry's message: the reader's start includes it (log.ts does the same).
    startMessageId: { ledgerId: start.ledgerId, entryId: start.entryId, partition: -1, batchIndex: -2 },
    receiverQueueSize: Math.min(count, QUEUE),
    maxMessages: count,
    counter: ctx.counter,
  });
  try {
    const out: Message[] = [];
    while (out.length < count) {
      const message = await consumer.receive(RECEIVE_TIMEOUT_MS);
      if (end !== undefined && compareEntries(message.messageId, end) > 0) break;
      out.push(message);
      if (end !== undefined && compareEntries(message.messageId, end) === 0) break;
    }
    return out;
  } finally {
    await consumer.close().catch(() => undefined);
  }
}

function compareEntries(a: MessageId, b: MessageId): number {
  return compareMessageIds({ ...a, batchIndex: -1 }, { ...b, batchIndex: -1 });
}

/** The id of the entry `k` entries before the last one (0: the last). */
function fromEnd(ledgers: readonly Ledger[], k: number): MessageId {
  let rest = k;
  for (let i = ledgers.length - 1; i >= 0; i--) {
    const ledger = ledgers[i]!;
    if (rest < ledger.entries) return { ledgerId: ledger.id, entryId: BigInt(ledger.entries - 1 - rest), partition: -1, batchIndex: -1 };
    rest -= ledger.entries;
  }
  throw new DriverError(NAME, `entry ${k} from the end is past the start of the topic`);
}

interface InternalStats {
  readonly lastConfirmedEntry?: string;
  readonly ledgers?: readonly { readonly ledgerId: number; readonly entries: number }[];
}

/**
 * The ledgers of a topic that hold entries, oldest first, up to its last confirmed entry. The
 * current ledger reports no entry count until it is closed: its count is that entry's id + 1.
 */
async function ledgersOf(admin: PulsarAdmin, topic: string): Promise<Ledger[]> {
  const stats = await admin.json<InternalStats>(`persistent/${topic.slice('persistent://'.length)}/internalStats`);
  const last = /^(-?\d+):(-?\d+)$/.exec(stats?.lastConfirmedEntry ?? '');
  if (!last) throw new DriverError(NAME, `internal stats of ${topic} name no last confirmed entry`);
  const lastLedger = BigInt(last[1]!);
  const out: Ledger[] = [];
  for (const ledger of stats.ledgers ?? []) {
    const id = BigInt(ledger.ledgerId);
    if (id > lastLedger) break;
    const entries = id === lastLedger ? Number(last[2]) + 1 : ledger.entries;
    if (entries > 0) out.push({ id, entries });
  }
  return out;
}
