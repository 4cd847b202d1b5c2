// One suite from start to end: the server's description, the interleaved rounds of both
// targets, the backend's own load tool (the limit rows, once, after the rounds) and the
// summary of every figure over the rounds.
import { type FigureSummary, summarizeRounds } from './round-summary.ts';
import { type RoundRun, runRounds } from './rounds.ts';
import type { BenchConfig, LimitRow, LimitUnavailable, Suite } from './target.ts';

export interface SuiteRunOptions {
  readonly config: BenchConfig;
  readonly rounds: number;
  readonly quick: boolean;
  readonly memory: boolean;
  readonly log: (line: string) => void;
}

export interface SuiteResult {
  readonly suite: Suite;
  readonly startedAt: Date;
  readonly options: SuiteRunOptions;
  /** The suite's line on the shared setup (server, version, durability), when it has one. */
  readonly setup: string | null;
  readonly runs: readonly RoundRun[];
  readonly summaries: readonly FigureSummary[];
  /** Null when the suite has no limit. */
  readonly limit: readonly LimitRow[] | LimitUnavailable | null;
}

export async function runSuite(suite: Suite, options: SuiteRunOptions): Promise<SuiteResult> {
  const { config, log } = options;
  const startedAt = new Date();
  log(
    `eventfold bench, suite ${suite.name}${options.quick ? ' (quick)' : ''}, ${options.rounds} interleaved round(s): ${JSON.stringify(config)}`,
  );
  const setup = suite.describe ? await suite.describe() : null;
  const runs = await runRounds(suite, config, { rounds: options.rounds, memory: options.memory, log });
  let limit: LimitRow[] | LimitUnavailable | null = null;
  if (suite.limit) {
    log(`${suite.name} limit:`);
    limit = await suite.limit.run(config, log);
    if ('unavailable' in limit) log(`  not measured: ${limit.unavailable}`);
  }
  return { suite, startedAt, options, setup, runs, summaries: summarizeRounds(config, runs), limit };
}
