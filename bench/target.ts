// The common interface every benchmarked store implements. A suite pits eventfold on one
// backend against a reference client of the same backend (SQLite: Emmett's SQLite event
// store; Redis: the raw node-redis client; Kafka: the raw @platformatic/kafka client; Pulsar:
// eventfold's own Pulsar client used directly). The measuring code in
// measure.ts only talks to this interface, so every target is timed the same way.

/** The payload every target appends: one small JSON event, the same bytes for everyone. */
// A type alias, not an interface: Emmett's `Event` wants data assignable to Record<string, unknown>.
export type BenchEventData = {
  readonly amount: number;
  readonly note: string;
};

/** The state every target folds when it loads an aggregate. */
export interface BenchState {
  readonly balance: number;
  readonly count: number;
}

export const initialBenchState = (): BenchState => ({ balance: 0, count: 0 });
export const evolveBench = (state: BenchState, data: BenchEventData): BenchState => ({
  balance: state.balance + data.amount,
  count: state.count + 1,
});

export const benchEvent = (i: number): BenchEventData => ({ amount: (i % 97) + 1, note: `deposit number ${i}` });

export interface LoadResult {
  readonly version: number;
  readonly state: BenchState;
  /** Version of the snapshot the load started from, when the target used one. */
  readonly snapshotVersion?: number | undefined;
  /** Events folded by this load. */
  readonly eventsFolded: number;
}

export interface BenchTarget {
  /** Short name used in the table and the JSON (`eventfold`, `Emmett`). */
  readonly name: string;
  /** Which API each figure goes through, and durability settings: printed under the table. */
  readonly notes: readonly string[];
  /** Whether `load(..., { snapshot: true })` really starts from a snapshot. */
  readonly snapshots: boolean;
  /** Opens (or creates) this target's store inside `dir`. Reopening the same dir sees the same data. */
  open(dir: string): Promise<void>;
  /** Appends `events` to `streamId`, which must be at `expectedVersion`; returns the new version. */
  append(streamId: string, events: readonly BenchEventData[], expectedVersion: number): Promise<number>;
  /** Folds the stream into a `BenchState`; with `snapshot`, through the target's snapshot support. */
  load(streamId: string, options: { snapshot: boolean }): Promise<LoadResult>;
  /**
   * Reads every event of the store from the beginning, as a new consumer group / processor
   * named `group`, and resolves once `total` events were handled; returns the count.
   */
  catchUp(group: string, total: number): Promise<CatchUp>;
  close(): Promise<void>;
  /**
   * Other ways this target can append, timed like `append` (same sizes, same payloads) and
   * shown as extra rows. Their writes must not be visible to `load` or `catchUp`.
   */
  readonly appendVariants?: readonly AppendVariant[];
  /** Untimed work between the loads and the catch-up (what the target's store needs to be read as a whole). */
  prepareCatchUp?(): Promise<void>;
  /** Deletes whatever `dir`'s store keeps outside `dir` (server-side data): after the target's round, or at the end of the run after a failure. */
  cleanup?(dir: string): Promise<void>;
}

export interface AppendVariant {
  /** What this variant does, for the table: `MULTI { XADD stream, XADD partition log }`. */
  readonly label: string;
  append(streamId: string, events: readonly BenchEventData[], expectedVersion: number): Promise<number>;
}

export interface CatchUp {
  /** Events the consumer handled. */
  readonly handled: number;
  /** Stops the consumer and releases what it holds; not part of the timed section. */
  readonly stop: () => Promise<void>;
}

/** A suite: eventfold on a backend and the reference it is compared with. */
export interface Suite {
  readonly name: string;
  readonly subject: () => BenchTarget;
  readonly baseline: () => BenchTarget;
  /** Fails with a clear message when the backend cannot be used (a server that is not running). */
  readonly preflight?: () => Promise<void>;
  /** Installs and loads what a target needs before `subject()` / `baseline()` are called (a comparison package: comparisons.ts). */
  readonly prepare?: (log: (line: string) => void) => Promise<void>;
  /** One line on the setup shared by both targets (server, version, durability), under the table. */
  readonly describe?: () => Promise<string>;
  /** The backend's own load tool, run once after all rounds of both targets: the limit of this machine, shown as a table of its own. */
  readonly limit?: {
    readonly title: string;
    readonly notes: readonly string[];
    /** The tool's runs, or why it could not run here (then the report says so instead of a table). */
    readonly run: (config: BenchConfig, log: (line: string) => void) => Promise<LimitRow[] | LimitUnavailable>;
  };
}

/** A limit that could not be measured on this machine: the reason, printed where its table would be. */
export interface LimitUnavailable {
  readonly unavailable: string;
}

/** One run of a backend's own load tool (Kafka: `kafka-producer-perf-test`). */
export interface LimitRow {
  readonly label: string;
  readonly records: number;
  readonly recordsPerSec: number;
  readonly avgLatencyMs: number;
  readonly p50LatencyMs: number;
  readonly p99LatencyMs: number;
  readonly maxLatencyMs: number;
  /** The tool's own summary line, verbatim. */
  readonly summary: string;
  readonly payloadBytes?: number;
}

export interface BenchConfig {
  /** Single-event appends (batch 1), each awaited before the next. */
  readonly appends: number;
  /** Appends of 100 events each. */
  readonly batchCalls: number;
  /** Events in the aggregate that is loaded. */
  readonly aggregateEvents: number;
  /** Timed loads per load figure (the median is reported). */
  readonly loadRepeats: number;
  /** Single-event appends before anything is timed. */
  readonly warmup: number;
  /** Streams the batch-1 appends rotate over. */
  readonly streams: number;
}
