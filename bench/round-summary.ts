// The figures a suite's table shows, and their summary over the rounds of a run: for each
// target its min / median / max, and the ratio subject/baseline taken pair by pair (round i's
// subject over round i's baseline, both measured minutes apart) with its min / median / max.
import type { RoundRun, TargetRun } from './rounds.ts';
import { formatNumber, type Spread, spread } from './stats.ts';
import type { BenchConfig } from './target.ts';

/** One row of the table: what it reads from each target's figures of a round. */
export interface FigureRow {
  readonly figure: string;
  readonly better: 'higher' | 'lower';
  readonly unit: string;
  /** A value in `unit`, without the unit. */
  readonly format: (value: number) => string;
  readonly subject: (run: TargetRun) => number | null;
  readonly baseline: (run: TargetRun) => number | null;
}

/** One series of a row over the rounds: a value per round (null when not measured) and its spread. */
export interface Series {
  readonly values: readonly (number | null)[];
  /** Over the rounds that have a value; null when none has. */
  readonly spread: Spread | null;
}

export interface FigureSummary {
  readonly row: FigureRow;
  readonly subject: Series;
  readonly baseline: Series;
  /** Per round: subject / baseline of that round. */
  readonly ratio: Series;
}

const MIB = 1024 * 1024;
const formatMiB = (bytes: number): string => (bytes / MIB).toFixed(1);

/** The rows of a suite's table; the baseline's append variants add rows against the subject's one append figure. */
export function figureRows(config: BenchConfig, first: RoundRun): FigureRow[] {
  const agg = config.aggregateEvents.toLocaleString('en-US');
  const both = (pick: (run: TargetRun) => number | null) => ({ subject: pick, baseline: pick });
  const rows: FigureRow[] = [
    {
      figure: 'appends/s, batch 1',
      better: 'higher',
      unit: 'appends/s',
      format: formatNumber,
      ...both((r) => r.figures.appendsPerSecBatch1),
    },
    {
      figure: 'events/s, batch 100',
      better: 'higher',
      unit: 'events/s',
      format: formatNumber,
      ...both((r) => r.figures.eventsPerSecBatch100),
    },
    {
      figure: 'append latency p50, batch 1',
      better: 'lower',
      unit: 'ms',
      format: formatNumber,
      ...both((r) => r.figures.appendLatencyMs.p50),
    },
    {
      figure: 'append latency p99, batch 1',
      better: 'lower',
      unit: 'ms',
      format: formatNumber,
      ...both((r) => r.figures.appendLatencyMs.p99),
    },
    {
      figure: `load ${agg}-event aggregate, no snapshot`,
      better: 'lower',
      unit: 'ms',
      format: formatNumber,
      ...both((r) => r.figures.loadNoSnapshotMs),
    },
    {
      figure: `load ${agg}-event aggregate, with snapshot*`,
      better: 'lower',
      unit: 'ms',
      format: formatNumber,
      ...both((r) => r.figures.loadSnapshotMs),
    },
    {
      figure: 'load (no snapshot): peak RSS growth',
      better: 'lower',
      unit: 'MiB',
      format: formatMiB,
      ...both((r) => r.memory?.rssPeakGrowthBytes ?? null),
    },
    {
      figure: 'load (no snapshot): JS heap growth',
      better: 'lower',
      unit: 'MiB',
      format: formatMiB,
      ...both((r) => r.memory?.heapGrowthBytes ?? null),
    },
    {
      figure: `catch-up from the start (${formatNumber(first.subject.figures.catchUpEvents)} events)`,
      better: 'higher',
      unit: 'events/s',
      format: formatNumber,
      ...both((r) => r.figures.catchUpEventsPerSec),
    },
  ];
  first.baseline.figures.variants.forEach(({ label }, k) => {
    const variant = (run: TargetRun) => {
      const v = run.figures.variants[k];
      if (v?.label !== label) throw new Error(`${run.name}: append variant ${k} is ${v?.label}, expected ${label}`);
      return v;
    };
    rows.push(
      {
        figure: `appends/s, batch 1, ${label}`,
        better: 'higher',
        unit: 'appends/s',
        format: formatNumber,
        subject: (r) => r.figures.appendsPerSecBatch1,
        baseline: (r) => variant(r).appendsPerSecBatch1,
      },
      {
        figure: `events/s, batch 100, ${label}`,
        better: 'higher',
        unit: 'events/s',
        format: formatNumber,
        subject: (r) => r.figures.eventsPerSecBatch100,
        baseline: (r) => variant(r).eventsPerSecBatch100,
      },
      {
        figure: `append latency p50, batch 1, ${label}`,
        better: 'lower',
        unit: 'ms',
        format: formatNumber,
        subject: (r) => r.figures.appendLatencyMs.p50,
        baseline: (r) => variant(r).appendLatencyMs.p50,
      },
      {
        figure: `append latency p99, batch 1, ${label}`,
        better: 'lower',
        unit: 'ms',
        format: formatNumber,
        subject: (r) => r.figures.appendLatencyMs.p99,
        baseline: (r) => variant(r).appendLatencyMs.p99,
      },
    );
  });
  return rows;
}

const series = (values: readonly (number | null)[]): Series => {
  const known = values.filter((v): v is number => v !== null);
  return { values, spread: known.length === 0 ? null : spread(known) };
};

export function summarizeRow(row: FigureRow, runs: readonly RoundRun[]): FigureSummary {
  const subject = runs.map((r) => row.subject(r.subject));
  const baseline = runs.map((r) => row.baseline(r.baseline));
  const ratio = subject.map((s, i) => {
    const b = baseline[i];
    return s === null || b === null || b === undefined || b === 0 ? null : s / b;
  });
  return { row, subject: series(subject), baseline: series(baseline), ratio: series(ratio) };
}

export function summarizeRounds(config: BenchConfig, runs: readonly RoundRun[]): FigureSummary[] {
  const first = runs[0];
  if (!first) throw new Error('no rounds to summarize');
  return figureRows(config, first).map((row) => summarizeRow(row, runs));
}
