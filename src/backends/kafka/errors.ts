/** What @platformatic/kafka's errors offer for telling broker answers apart. */
interface KafkaClientError {
  findBy?: (key: string, value: unknown) => unknown;
}

/** Backend name in error prefixes: `[eventfold] [kafka]`. */
export const KAFKA = 'kafka';

/** Whether the broker answered with one of these error codes (`apiId`, e.g. `TOPIC_ALREADY_EXISTS`), anywhere in the error. */
export function hasApiError(error: unknown, ...ids: string[]): boolean {
  const findBy = (error as KafkaClientError | undefined)?.findBy;
  return typeof findBy === 'function' && ids.some((id) => findBy.call(error, 'apiId', id));
}

/**
 * The broker's error codes anywhere in the error (`['NOT_COORDINATOR']`): the client's message
 * names only the API ("…while executing API InitProducerId(v5)"), and a message is all that
 * crosses a routed reply, so errors that leave the driver say them.
 */
export function apiErrors(error: unknown): string[] {
  const found = new Set<string>();
  const visit = (e: unknown, depth: number): void => {
    if (typeof e !== 'object' || e === null || depth > 8) return;
    const apiId = (e as { apiId?: unknown }).apiId;
    if (typeof apiId === 'string') found.add(apiId);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const inner of errors) visit(inner, depth + 1);
    visit((e as { cause?: unknown }).cause, depth + 1);
  };
  visit(error, 0);
  return [...found];
}

/** The error's message with the broker's error codes it carries, if any. */
export function kafkaErrorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const codes = apiErrors(error).filter((code) => !message.includes(code));
  return codes.length > 0 ? `${message} (${codes.join(', ')})` : message;
}

/** Leadership moved, or a new topic's partitions are not loaded yet: refresh metadata and retry. */
export function hasStaleMetadata(error: unknown): boolean {
  const findBy = (error as KafkaClientError | undefined)?.findBy;
  return typeof findBy === 'function' && Boolean(findBy.call(error, 'hasStaleMetadata', true));
}

/**
 * Broker answers that mean this producer's epoch is no longer the transactional id's: a newer
 * claim (InitProducerId on the same transactional id) bumped it and aborted whatever this
 * producer had open, or the coordinator aborted the transaction on its own (timeout). In every
 * case nothing of the current transaction becomes visible, and only a new claim can write again.
 */
const FENCED = [
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
  'INVALID_TXN_STATE',
  'TRANSACTION_ABORTABLE',
  'TRANSACTIONAL_ID_NOT_FOUND',
];

export function isFenced(error: unknown): boolean {
  const findBy = (error as KafkaClientError | undefined)?.findBy;
  return typeof findBy === 'function' && (hasApiError(error, ...FENCED) || Boolean(findBy.call(error, 'producerFenced', true)));
}

/** The broker refused a record batch for its size (message.max.bytes, or a request over its limit). */
export function isTooLarge(error: unknown): boolean {
  return hasApiError(error, 'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE');
}
