import { arg } from './arguments.ts';

/** What a snapshot policy sees after an aggregate was loaded or changed. */
export interface SnapshotContext {
  /** Stream version of the state. */
  readonly version: number;
  /** Events folded since the last snapshot (all of them when there is none). */
  readonly eventsSinceSnapshot: number;
  /** Serialized size of the state in bytes (computed only when a policy reads it). */
  readonly stateBytes: number;
  /** Milliseconds since the last snapshot was taken, undefined when there is none. */
  readonly msSinceSnapshot: number | undefined;
}

/** Decides whether to write a snapshot now. Only consulted when there are new events. */
export type SnapshotPolicy = (context: SnapshotContext) => boolean;

/** Snapshot once `n` events were folded since the last snapshot. */
export function everyNEvents(n: number): SnapshotPolicy {
  arg.positive(n, 'everyNEvents(n)');
  return (c) => c.eventsSinceSnapshot >= n;
}

/** Snapshot when the state has grown to `bytes` or more (large states are costly to rebuild). */
export function whenStateExceeds(bytes: number): SnapshotPolicy {
  arg.positive(bytes, 'whenStateExceeds(bytes)');
  return (c) => c.stateBytes >= bytes;
}

/** Snapshot when the last one is older than `ms` (or there is none). */
export function everyInterval(ms: number): SnapshotPolicy {
  arg.positive(ms, 'everyInterval(ms)');
  return (c) => c.msSinceSnapshot === undefined || c.msSinceSnapshot >= ms;
}

/** Snapshot when any of the policies says so. */
export function anyOf(...policies: SnapshotPolicy[]): SnapshotPolicy {
  for (const [i, p] of policies.entries()) arg.function(p, `anyOf policy ${i + 1}`);
  return (c) => policies.some((p) => p(c));
}
