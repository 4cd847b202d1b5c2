// Typed errors of the Pulsar binary-protocol client. All are DriverErrors (code DRIVER_ERROR,
// prefix `[eventfold] [pulsar]`), so one that escapes the driver is still an EventfoldError; the
// driver maps the ones with a meaning of their own (ProducerFencedError → PartitionFencedError).

import { DriverError } from '../../../core/errors.ts';
import { ServerError, ServerErrorSchema } from './proto/PulsarApi_pb.ts';

export const PULSAR = 'pulsar';

export class PulsarClientError extends DriverError {
  constructor(message: string, cause?: unknown) {
    super(PULSAR, message, cause);
  }
}

/** The broker answered a request with an error (CommandError, or an error field of a response). */
export class PulsarServerError extends PulsarClientError {
  /** The broker's ServerError code, e.g. ServerError.TopicNotFound. */
  readonly serverError: ServerError;
  /** Its name, e.g. `TopicNotFound`. */
  readonly serverErrorName: string;
  /** The broker's own words. */
  readonly brokerMessage: string;
  constructor(what: string, serverError: ServerError, message: string) {
    const name = ServerErrorSchema.values.find((v) => v.number === serverError)?.name ?? `ServerError(${serverError})`;
    super(`${what}: broker answered ${name}: ${message}`);
    this.serverError = serverError;
    this.serverErrorName = name;
    this.brokerMessage = message;
  }
}

/**
 * Another producer holds the topic exclusively (Exclusive), or took it over with a higher topic
 * epoch (ExclusiveWithFencing). Sends that were in flight when the producer was fenced may or
 * may not be stored: a fenced writer must treat them as "outcome unknown".
 */
export class ProducerFencedError extends PulsarServerError {
  readonly topic: string;
  constructor(topic: string, message: string) {
    super(`producer on ${topic}`, ServerError.ProducerFenced, message);
    this.topic = topic;
  }
}

/** The producer or consumer was closed (by its owner, or for good by the broker). */
export class ClosedError extends PulsarClientError {}

/** The connection to the broker failed or closed before the answer came. */
export class ConnectionClosedError extends PulsarClientError {}

/** No answer within the operation or send timeout. For a send the outcome is unknown. */
export class PulsarTimeoutError extends PulsarClientError {}

/** A message larger than the broker's max_message_size; it was not sent. */
export class MessageTooLargeError extends PulsarClientError {
  readonly size: number;
  readonly limit: number;
  constructor(topic: string, size: number, limit: number) {
    super(`a message of ${size} bytes for ${topic} is over the broker's limit of ${limit} bytes; it was not sent`);
    this.size = size;
    this.limit = limit;
  }
}

/** The broker sent something this client cannot parse or does not support. */
export class ProtocolError extends PulsarClientError {}

export function isRetriable(error: unknown): boolean {
  if (error instanceof ConnectionClosedError || error instanceof PulsarTimeoutError) return true;
  if (!(error instanceof PulsarServerError) || error instanceof ProducerFencedError) return false;
  return (
    error.serverError === ServerError.ServiceNotReady ||
    error.serverError === ServerError.TooManyRequests ||
    error.serverError === ServerError.MetadataError ||
    error.serverError === ServerError.PersistenceError ||
    error.serverError === ServerError.ProducerBusy ||
    error.serverError === ServerError.ConsumerBusy ||
    // The broker's answer to an internal failure, e.g. Pulsar 4.0.7's StackOverflowError in
    // AbstractDispatcherSingleActiveConsumer.addConsumer when a reader resubscribes while its
    // old registration is still being removed: gone on the next try (as the Java client retries it).
    error.serverError === ServerError.UnknownError
  );
}
