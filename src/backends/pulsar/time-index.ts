import type { PulsarAdmin } from './admin.ts';
import { compareMessageIds } from './client/message-id.ts';
import type { PulsarLog } from './log.ts';
import { entryOffset } from './records.ts';

/**
 * The time index of a partition: the broker's search by publish time
 * (`GET …/{partition}/messageid/{time}`: the first entry published at or after `time`, by a
 * binary search over the topic's ledgers). A commit's publish time is the latest time of its
 * events, and never below the previous entry's (lease.ts), so publish times grow along the log
 * and the entry found is at or before the first event whose `time` is >= `time`. Undefined when
 * no entry is that recent: the broker then names the position past the last entry.
 */
export async function firstEntryAtTime(admin: PulsarAdmin, log: PulsarLog, topic: string, time: number): Promise<bigint | undefined> {
  const last = await log.lastMessage(topic);
  if (last === undefined) return undefined;
  const at = Math.max(0, Math.floor(time));
  const found = await admin.json<{ ledgerId: number; entryId: number }>(
    `persistent/${topic.slice('persistent://'.length)}/messageid/${at}`,
  );
  const id = { ledgerId: BigInt(found.ledgerId), entryId: BigInt(found.entryId), partition: -1, batchIndex: -1 };
  if (compareMessageIds(id, { ...last.messageId, batchIndex: -1 }) > 0) return undefined;
  return entryOffset(id);
}
