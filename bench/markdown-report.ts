// A suite's result as markdown: the table of figures over the rounds (each target's median and
// range, the per-round ratio's median and range), the notes, and the limit table when the suite
// has one.
import { cpus, tmpdir, totalmem } from 'node:os';
import type { FigureSummary, Series } from './round-summary.ts';
import { formatBytes, formatNumber, median } from './stats.ts';
import type { RoundRun } from './rounds.ts';
import type { SuiteResult } from './suite-run.ts';

/** `1,234 (1,100–1,300) appends/s`; a single round prints its value only. */
function seriesCell(summary: FigureSummary, series: Series): string {
  const { format, unit } = summary.row;
  const s = series.spread;
  if (s === null) return 'n/a';
  const range = series.values.length > 1 ? ` (${format(s.min)}–${format(s.max)})` : '';
  return `${format(s.median)}${range} ${unit}`;
}

const formatRatio = (r: number): string => (r >= 0.1 ? r.toFixed(2) : r.toPrecision(2));

function ratioCell(ratio: Series): string {
  const s = ratio.spread;
  if (s === null) return 'n/a';
  const range = ratio.values.length > 1 ? ` (${formatRatio(s.min)}–${formatRatio(s.max)})` : '';
  return `${formatRatio(s.median)}×${range}`;
}

/**
 * Every distinct note of the targets, in order; a note that did not read the same in every round
 * (a count of retries, of server forks) says which rounds it is from.
 */
function notesOverRounds(perRound: readonly (readonly string[])[]): string[] {
  const rounds = new Map<string, number[]>();
  perRound.forEach((notes, i) => {
    for (const note of notes) rounds.set(note, [...(rounds.get(note) ?? []), i + 1]);
  });
  return [...rounds].map(([note, seen]) =>
    seen.length === perRound.length ? note : `round${seen.length > 1 ? 's' : ''} ${seen.join(', ')}: ${note}`,
  );
}

export function markdownReport(result: SuiteResult): string[] {
  const { suite, runs, summaries, options, setup, limit } = result;
  const { config } = options;
  const first = runs[0]!;
  const subject = first.subject.name;
  const baseline = first.baseline.name;
  const lines: string[] = [];
  const out = (line = ''): void => void lines.push(line);

  out();
  out(`### ${suite.name}: ${subject} vs ${baseline}, ${runs.length} interleaved round(s)`);
  out();
  const range = runs.length > 1 ? ' median (min–max)' : '';
  out(
    `| figure | ${subject}${range} | ${baseline}${range} | ratio ${subject}/${baseline}${runs.length > 1 ? ' per round: median (min–max)' : ''} | better |`,
  );
  out('|---|---:|---:|---:|---|');
  for (const summary of summaries) {
    out(
      `| ${summary.row.figure} | ${seriesCell(summary, summary.subject)} | ${seriesCell(summary, summary.baseline)} | ${ratioCell(summary.ratio)} | ${summary.row.better} is better |`,
    );
  }
  out();
  const snapshotOf = (r: RoundRun): string =>
    `the snapshot at version ${r.subject.figures.snapshotLoad.snapshotVersion} and folded ${r.subject.figures.snapshotLoad.eventsFolded} events`;
  const snapshots = new Set(runs.map(snapshotOf));
  const snapshotLoads =
    snapshots.size === 1 ? `${[...snapshots][0]} in every round` : runs.map((r) => `round ${r.round}: ${snapshotOf(r)}`).join('; ');
  out(
    `\\* ${baseline} has no snapshots: its "with snapshot" row is the same full fold as the row above, timed again. ` +
      `${subject}'s snapshot load started from ${snapshotLoads}.`,
  );
  out();
  out(
    `Run: ${result.startedAt.toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${formatBytes(totalmem())} RAM, ` +
      `data in ${tmpdir()}. ${runs.length} round(s), interleaved: each round measures ${subject}, then ${baseline}, in this one process, each on fresh state ` +
      '(a new directory, key prefix or topics, deleted after its round). ' +
      `A target's figure is the median (min–max) over the rounds; the ratio is taken per round (round i's ${subject} over round i's ${baseline}), then its median (min–max). ` +
      `Sizes per round and target: ${config.appends} batch-1 appends over ${config.streams} streams (after ${config.warmup} warm-up appends), ` +
      `${config.batchCalls} × 100-event appends, loads = median of ${config.loadRepeats} after one warm-up load, catch-up = second of two runs (the first warms up). ` +
      (options.memory
        ? 'Memory is measured in a fresh child process per target after each of its rounds.'
        : 'Memory was not measured (--no-memory).'),
  );
  if (setup) out(`- ${setup}`);
  for (const note of notesOverRounds(runs.map((r) => [...r.subject.notes, ...r.baseline.notes]))) out(`- ${note}`);

  const unavailable = limit !== null && 'unavailable' in limit ? limit.unavailable : null;
  const limitRows = limit !== null && !('unavailable' in limit) ? limit : null;
  if (suite.limit && unavailable !== null) {
    out();
    out(`#### ${suite.limit.title}`);
    out();
    out(`Not measured in this run: ${unavailable}`);
    out();
    for (const note of suite.limit.notes) out(`- ${note}`);
  } else if (suite.limit && limitRows) {
    // The limit ran once; each target's batch-100 events/s is its median over the rounds.
    const batch100 = (pick: (r: RoundRun) => number): number => median(runs.map(pick));
    const subjectRate = batch100((r) => r.subject.figures.eventsPerSecBatch100);
    const baselineRate = batch100((r) => r.baseline.figures.eventsPerSecBatch100);
    const share = (of: number, limitRate: number): string => `${((100 * of) / limitRate).toFixed(1)}%`;
    out();
    out(`#### ${suite.limit.title}`);
    out();
    out(
      `| tool run | records | records/s | latency avg / p50 / p99 / max | ${subject} batch-100 events/s (median) as share | ${baseline} batch-100 events/s (median) as share |`,
    );
    out('|---|---:|---:|---:|---:|---:|');
    for (const row of limitRows) {
      out(
        `| ${row.label} | ${formatNumber(row.records)} | ${formatNumber(row.recordsPerSec)} | ${row.avgLatencyMs} / ${row.p50LatencyMs} / ${row.p99LatencyMs} / ${row.maxLatencyMs} ms | ` +
          `${share(subjectRate, row.recordsPerSec)} | ${share(baselineRate, row.recordsPerSec)} |`,
      );
    }
    out();
    for (const row of limitRows) out(`- tool summary (${row.label.split(',')[0]}): \`${row.summary}\``);
    for (const note of suite.limit.notes) out(`- ${note}`);
  }
  return lines;
}
