// What the given/when/then specs compare, and the failures they throw: node:assert's
// AssertionError, whose message lists expected and actual events one per line (any runner
// prints it), with `expected`/`actual` set for the runners that draw a diff (operator `spec`: Node
// appends no diff of its own to the message, which stays the same on every Node version).
import { AssertionError } from 'node:assert';
import { inspect, isDeepStrictEqual } from 'node:util';
import type { EventMetadata } from '../core/event-type.ts';

/** An event as a spec states it: a constructed event or a plain `{ type, data }`. */
export interface SpecEventLike {
  readonly type: string;
  readonly data: unknown;
  readonly metadata?: EventMetadata;
}

/** A class of errors, to match a rejection by (`OrderRejectedError`, `CommandRejectedError`…). */
export type ErrorClass<T extends Error = Error> = abstract new (...args: never[]) => T;

/** What a rejection must look like: its class, its message (exact, or matching), or both. */
export interface ExpectedRejection {
  readonly error?: ErrorClass | undefined;
  readonly message?: string | RegExp | undefined;
}

/** What the spec was: printed at the top of every failure. */
export interface SpecScene {
  readonly given: readonly SpecEventLike[];
  readonly when: unknown;
  /** Where the events came from, e.g. `decide` or `the store (stream "order-7")`. */
  readonly source: string;
}

const show = (value: unknown): string => inspect(value, { depth: 8, breakLength: Number.POSITIVE_INFINITY, compact: true });

/** Metadata is compared only when the expected event states some; ids never are (they are random). */
const comparable = (e: SpecEventLike, withMetadata: boolean): Record<string, unknown> =>
  withMetadata ? { type: e.type, data: e.data, metadata: { ...e.metadata } } : { type: e.type, data: e.data };

const statesMetadata = (e: SpecEventLike | undefined): boolean => e?.metadata !== undefined && Object.keys(e.metadata).length > 0;

const countOf = (n: number): string => `${n} event${n === 1 ? '' : 's'}`;

function eventLines(events: readonly Record<string, unknown>[], differs: (i: number) => boolean): string[] {
  if (events.length === 0) return ['      (none)'];
  return events.map((e, i) => {
    const { type, data, metadata } = e as { type: string; data: unknown; metadata?: unknown };
    const meta = metadata === undefined ? '' : ` metadata ${show(metadata)}`;
    return `  ${differs(i) ? '✗' : ' '} ${i + 1}. ${type} ${show(data)}${meta}`;
  });
}

function sceneLines(scene: SpecScene): string[] {
  const given = scene.given.length === 0 ? '(no events)' : scene.given.map((e) => e.type).join(', ');
  return [`  given: ${given}`, `  when:  ${show(scene.when)}`];
}

/** Throws unless `actual` holds the expected events, in order (type and data; metadata when stated). */
export function assertEvents(scene: SpecScene, expected: readonly SpecEventLike[], actual: readonly SpecEventLike[]): void {
  const wanted = expected.map((e) => comparable(e, statesMetadata(e)));
  const got = actual.map((e, i) => comparable(e, statesMetadata(expected[i])));
  if (isDeepStrictEqual(wanted, got)) return;
  const differs = (i: number): boolean => !isDeepStrictEqual(wanted[i], got[i]);
  const message = [
    `spec failed: ${scene.source} gave other events than expected`,
    ...sceneLines(scene),
    `  expected ${countOf(wanted.length)}:`,
    ...eventLines(wanted, differs),
    `  actual ${countOf(got.length)}:`,
    ...eventLines(got, differs),
  ].join('\n');
  throw new AssertionError({ message, expected: wanted, actual: got, operator: 'spec' });
}

/** Throws: events were expected, the command was rejected instead. */
export function failedWithError(scene: SpecScene, expected: readonly SpecEventLike[], error: unknown): never {
  const wanted = expected.map((e) => comparable(e, statesMetadata(e)));
  const message = [
    `spec failed: expected ${countOf(wanted.length)}, but the command was rejected: ${describeError(error)}`,
    ...sceneLines(scene),
    `  expected ${countOf(wanted.length)}:`,
    ...eventLines(wanted, () => false),
  ].join('\n');
  const failure = new AssertionError({ message, expected: wanted, actual: error, operator: 'spec' });
  failure.cause = error;
  throw failure;
}

/** Throws unless `error` is the expected rejection; `events` are what came out if nothing was thrown. */
export function assertRejection(
  scene: SpecScene,
  expected: ExpectedRejection,
  outcome: { threw: true; error: unknown } | { threw: false; events: readonly SpecEventLike[] },
): void {
  const want = describeExpected(expected);
  if (!outcome.threw) {
    const message = [
      `spec failed: expected the command to be rejected with ${want}, but ${scene.source} gave ${countOf(outcome.events.length)}`,
      ...sceneLines(scene),
      '  actual events:',
      ...eventLines(
        outcome.events.map((e) => comparable(e, statesMetadata(e))),
        () => true,
      ),
    ].join('\n');
    throw new AssertionError({ message, expected: want, actual: outcome.events, operator: 'throws' });
  }
  const { error } = outcome;
  const wrongClass = expected.error !== undefined && !(error instanceof expected.error);
  const text = error instanceof Error ? error.message : undefined;
  const wrongMessage =
    expected.message !== undefined &&
    (text === undefined ||
      (typeof expected.message === 'string'
        ? text !== expected.message && withoutPrefix(text) !== expected.message
        : !expected.message.test(text)));
  if (!wrongClass && !wrongMessage) return;
  const message = [
    `spec failed: expected the command to be rejected with ${want}, but it was rejected with ${describeError(error)}`,
    ...sceneLines(scene),
  ].join('\n');
  const failure = new AssertionError({ message, expected: want, actual: describeError(error), operator: 'throws' });
  failure.cause = error;
  throw failure;
}

/** eventfold's errors start with `[eventfold] ` (or `[eventfold] [<backend>] `): an exact message may leave it out. */
const withoutPrefix = (message: string): string => message.replace(/^\[eventfold\] (\[[^\]]*\] )?/, '');

function describeExpected(expected: ExpectedRejection): string {
  const parts: string[] = [];
  if (expected.error) parts.push(expected.error.name || 'the given error class');
  if (typeof expected.message === 'string') parts.push(`message ${JSON.stringify(expected.message)}`);
  else if (expected.message) parts.push(`a message matching ${expected.message}`);
  return parts.length > 0 ? parts.join(', ') : 'any error';
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${JSON.stringify(error.message)}` : `a thrown ${show(error)}`;
}

/** Reads `thenThrows(ErrorClass, message?)` or `thenThrows(message)`. */
export function rejectionOf(error: ErrorClass | string | RegExp | undefined, message: string | RegExp | undefined): ExpectedRejection {
  if (typeof error === 'function') return { error, message };
  if (typeof error === 'string' || error instanceof RegExp) return { message: error };
  return { message };
}

/** Called as `then(resolve, reject)`: someone awaited the spec before it was finished. */
export function refuseAwait(what: string): never {
  throw new TypeError(`${what} is not a promise: finish the spec with .then([...events]) or .thenThrows(ErrorClass, message?)`);
}
