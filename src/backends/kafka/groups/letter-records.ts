import type { DeadLetter, StoredEvent } from '../../../core/driver.ts';
import type { LogRecord } from '../log.ts';
import { eventRecord, storedEvent, type OutgoingRecord } from '../records.ts';

/** Dead-letter headers, next to the event's own `ef-*` envelope (records.ts). */
const DL = {
  partition: 'ef-dl-partition',
  offset: 'ef-dl-offset',
  reason: 'ef-dl-reason',
  deliveries: 'ef-dl-deliveries',
  at: 'ef-dl-at',
  /** On a redrive marker (DLQ) and on a redriven copy (redrive topic): the letter's id. */
  letter: 'ef-dl-letter',
} as const;

/** A dead letter for the group's DLQ: the event's record plus reason, original position, deliveries and time. */
export function letterRecord(topic: string, event: StoredEvent, reason: string, deliveries: number): OutgoingRecord {
  const record = eventCopy(topic, event);
  record.headers.set(Buffer.from(DL.reason), Buffer.from(reason, 'utf8'));
  record.headers.set(Buffer.from(DL.deliveries), Buffer.from(String(deliveries)));
  record.headers.set(Buffer.from(DL.at), Buffer.from(String(Date.now())));
  return record;
}

/** A letter's event copied to the group's redrive topic, to be delivered again. */
export function redriveCopy(topic: string, letter: DeadLetter): OutgoingRecord {
  const copy = eventCopy(topic, letter.event);
  copy.headers.set(Buffer.from(DL.letter), Buffer.from(letter.id));
  return copy;
}

/** The DLQ's "redriven" marker of a letter: the letter no longer lists. */
export function redriveMarker(topic: string, letterId: string): OutgoingRecord {
  return {
    topic,
    partition: 0,
    key: Buffer.from(letterId),
    value: Buffer.alloc(0),
    headers: new Map([[Buffer.from(DL.letter), Buffer.from(letterId)]]),
    timestamp: BigInt(Date.now()),
  };
}

/** What a DLQ record is: a letter (undefined when eventfold did not write its event), or the marker of a redriven one. */
export function readLetterRecord(record: LogRecord): { letter: DeadLetter | undefined } | { redriven: string } {
  const headers = new Map(record.headers.map(([key, value]) => [key?.toString('latin1'), value?.toString('utf8')] as const));
  const redriven = headers.get(DL.letter);
  if (redriven !== undefined) return { redriven };
  const event = storedEvent(record, 0);
  if (!event) return { letter: undefined };
  return {
    letter: {
      id: String(record.offset),
      event: { ...event, position: { partition: Number(headers.get(DL.partition)), offset: BigInt(headers.get(DL.offset) ?? '0') } },
      reason: headers.get(DL.reason) ?? '',
      deliveries: Number(headers.get(DL.deliveries) ?? '1'),
      deadAt: Number(headers.get(DL.at) ?? '0'),
    },
  };
}

/** The log position a redriven copy carries in its headers; undefined when they are missing or malformed. */
export function redrivenPosition(record: LogRecord): { partition: number; offset: bigint } | undefined {
  const headers = new Map(record.headers.map(([key, value]) => [key?.toString('latin1'), value?.toString('latin1')] as const));
  const partition = Number(headers.get(DL.partition));
  const offset = headers.get(DL.offset);
  if (!Number.isInteger(partition) || offset === undefined) return undefined;
  return { partition, offset: BigInt(offset) };
}

/** The event's record as records.ts lays it out, to another topic's partition 0, with its log position in headers. */
function eventCopy(topic: string, event: StoredEvent): OutgoingRecord & { headers: Map<Buffer, Buffer> } {
  const record = eventRecord({ topic, partition: 0 }, event.streamId, event, event.version);
  record.headers.set(Buffer.from(DL.partition), Buffer.from(String(event.position.partition)));
  record.headers.set(Buffer.from(DL.offset), Buffer.from(String(event.position.offset)));
  return record;
}
