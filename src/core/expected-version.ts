import { InvalidArgumentError } from './errors.ts';

/**
 * What a writer expects of the stream it appends to. Versions count events: a new stream is
 * at version 0, its first event is version 1.
 * - a number: the stream is exactly at that version (0 = it does not exist yet);
 * - `'no_stream'`: same as 0; `'stream_exists'`: at least one event; `'any'`: no check.
 */
export type ExpectedVersion = number | 'any' | 'no_stream' | 'stream_exists';

export function matchesExpectedVersion(expected: ExpectedVersion, actual: number): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return actual === 0;
    case 'stream_exists':
      return actual > 0;
    default:
      return actual === expected;
  }
}

/**
 * Whether `expected` fails against every version from `knownAtLeast` up: versions only grow, so
 * a stream known to be at `knownAtLeast` (say, by an index of committed events that may lag the
 * log) is there or further. True for a number below it and for `no_stream` once it exists;
 * false where a newer version could still match (a number above it, `stream_exists` at 0).
 */
export function conflictIsCertain(expected: ExpectedVersion, knownAtLeast: number): boolean {
  if (expected === 'no_stream') return knownAtLeast > 0;
  return typeof expected === 'number' && expected < knownAtLeast;
}

export function assertExpectedVersion(expected: unknown): asserts expected is ExpectedVersion {
  if (expected === 'any' || expected === 'no_stream' || expected === 'stream_exists') return;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) return;
  throw new InvalidArgumentError(
    `expectedVersion must be a non-negative integer, 'any', 'no_stream' or 'stream_exists', got ${String(expected)}`,
  );
}
