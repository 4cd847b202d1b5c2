import { InvalidStreamNameError } from './errors.ts';

/**
 * Stream names become Redis keys, Kafka keys and Pulsar topic parts, so one rule for every
 * backend: ASCII letters, digits, `_`, `-` and `.`, starting with a letter or digit, no `..`,
 * at most 200 characters. Separators (`/`, `:`, `{`, `}`), wildcards (`*`, `?`, `[`),
 * whitespace and non-ASCII characters can never reach a key or topic name.
 * The category of `order-42` is `order` (the part before the first `-`).
 */
const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const MAX_STREAM_NAME_LENGTH = 200;

export function assertStreamName(streamId: unknown): asserts streamId is string {
  if (typeof streamId !== 'string') {
    throw new InvalidStreamNameError(streamId, 'streamId must be a string');
  }
  if (streamId.length === 0) throw new InvalidStreamNameError(streamId, 'must not be empty');
  if (streamId.length > MAX_STREAM_NAME_LENGTH) {
    throw new InvalidStreamNameError(streamId, `longer than ${MAX_STREAM_NAME_LENGTH} characters`);
  }
  if (!STREAM_NAME.test(streamId)) {
    throw new InvalidStreamNameError(streamId, 'only ASCII letters, digits, "_", "-" and "." are allowed, starting with a letter or digit');
  }
  if (streamId.includes('..')) throw new InvalidStreamNameError(streamId, '".." is not allowed');
}

export function categoryOf(streamId: string): string {
  const dash = streamId.indexOf('-');
  return dash === -1 ? streamId : streamId.slice(0, dash);
}
