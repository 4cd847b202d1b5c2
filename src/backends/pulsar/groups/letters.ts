import type { DeadLetter, StoredEvent } from '../../../core/driver.ts';
import type { Message } from '../client/consumer.ts';
import { formatMessageId } from '../client/message-id.ts';
import { decodeCommitPayload, encodeCommit, P } from '../records.ts';

/** Message properties of a group's dead letters, redriven copies and redrive markers. */
const L = {
  partition: 'ef-partition',
  offset: 'ef-offset',
  reason: 'ef-reason',
  deliveries: 'ef-deliveries',
  at: 'ef-at',
  /** On a redriven copy and on a redrive marker: the id of the letter. */
  letter: 'ef-letter',
} as const;

export interface OutgoingMessage {
  readonly payload: Buffer;
  readonly properties: Record<string, string>;
}

/** The event laid out as a commit of one event (records.ts), with its log position in properties. */
function eventMessage(kind: string, event: StoredEvent, extra: Record<string, string>): OutgoingMessage {
  return {
    payload: encodeCommit([{ streamId: event.streamId, version: event.version, event }]),
    properties: {
      [P.kind]: kind,
      [L.partition]: String(event.position.partition),
      [L.offset]: String(event.position.offset),
      ...extra,
    },
  };
}

/** A dead letter for the group's DLQ. */
export function letterMessage(event: StoredEvent, reason: string, deliveries: number): OutgoingMessage {
  return eventMessage('letter', event, { [L.reason]: reason, [L.deliveries]: String(deliveries), [L.at]: String(Date.now()) });
}

/** A letter's event for the group's redrive topic, to be delivered again. */
export function redriveCopy(letter: DeadLetter): OutgoingMessage {
  return eventMessage('redrive', letter.event, { [L.letter]: letter.id });
}

/** The DLQ's marker of a redriven letter: the letter no longer lists. */
export function redriveMarker(letterId: string): OutgoingMessage {
  return { payload: Buffer.alloc(0), properties: { [P.kind]: 'redriven', [L.letter]: letterId } };
}

/** Where the event of a letter or copy sits in the log, from its properties; undefined when they are missing or malformed. */
function position(message: Message): { partition: number; offset: bigint } | undefined {
  const partition = Number(message.properties[L.partition]);
  const offset = message.properties[L.offset];
  if (!Number.isInteger(partition) || offset === undefined || !/^\d+$/.test(offset)) return undefined;
  return { partition, offset: BigInt(offset) };
}

/** The event of a redriven copy, at its position in the log; undefined for a message eventfold did not write. */
export function redrivenEvent(message: Message): StoredEvent | undefined {
  const at = position(message);
  if (message.properties[P.kind] !== 'redrive' || !at) return undefined;
  const [event] = decodeCommitPayload(message, at.partition);
  return event && { ...event, position: at };
}

/** What a DLQ message is: a letter (its id is its message id), or the marker of a redriven one. */
export function readLetter(message: Message): { letter: DeadLetter } | { redriven: string } | undefined {
  const kind = message.properties[P.kind];
  if (kind === 'redriven') {
    const id = message.properties[L.letter];
    return id === undefined ? undefined : { redriven: id };
  }
  const at = position(message);
  if (kind !== 'letter' || !at) return undefined;
  const [event] = decodeCommitPayload(message, at.partition);
  if (!event) return undefined;
  return {
    letter: {
      id: letterId(message),
      event: { ...event, position: at },
      reason: message.properties[L.reason] ?? '',
      deliveries: Number(message.properties[L.deliveries] ?? '1'),
      deadAt: Number(message.properties[L.at] ?? '0'),
    },
  };
}

/** `<ledger>:<entry>` of the letter's message in the DLQ. */
export function letterId(message: Message): string {
  return formatMessageId(message.messageId).split(':').slice(0, 2).join(':');
}
