// A suite's result as JSON: every round's raw figures per target, the summary of every table
// row (each target's values per round with min / median / max, and the per-round ratio with
// its min / median / max), the limit rows (or `{ unavailable: reason }`); written to bench/results/<suite>-<timestamp>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Series } from './round-summary.ts';
import type { SuiteResult } from './suite-run.ts';

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

const seriesJson = (series: Series) => ({
  values: series.values,
  min: series.spread?.min ?? null,
  median: series.spread?.median ?? null,
  max: series.spread?.max ?? null,
});

export function jsonReport(result: SuiteResult) {
  const { suite, runs, options } = result;
  const first = runs[0]!;
  return {
    suite: suite.name,
    startedAt: result.startedAt.toISOString(),
    setup: result.setup,
    quick: options.quick,
    rounds: runs.length,
    /** Inside every round, the subject ran first. */
    order: [first.subject.name, first.baseline.name],
    config: options.config,
    machine: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      totalMemBytes: totalmem(),
    },
    runs: runs.map((r) => ({ round: r.round, subject: r.subject, baseline: r.baseline })),
    table: result.summaries.map((s) => ({
      figure: s.row.figure,
      unit: s.row.unit,
      better: s.row.better,
      subject: { name: first.subject.name, ...seriesJson(s.subject) },
      baseline: { name: first.baseline.name, ...seriesJson(s.baseline) },
      ratio: seriesJson(s.ratio),
    })),
    limit: result.limit,
  };
}

export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);

/** Writes the report to bench/results/<suite>-<timestamp>.json; returns the file's path. */
export function writeJsonReport(result: SuiteResult, report: unknown): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${result.suite.name}-${result.startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${toJson(report)}\n`);
  return file;
}
