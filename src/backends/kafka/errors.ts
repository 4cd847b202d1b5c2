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
