// Runs two race-worker processes against one stream, started at the same moment, and checks
// that every version 1..2×rounds was won by exactly one of them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const worker = new URL('./race-worker.ts', import.meta.url).pathname;

export interface RaceResult {
  readonly stats: readonly { worker: string; won: number[]; conflicts: number }[];
  /** Every version won, sorted. */
  readonly allWon: readonly number[];
}

/** `target` is the worker's backend arguments, e.g. `['sqlite', file]` or `['redis', url, prefix]`. */
export async function raceTwoProcesses(target: readonly string[], rounds: number, timeoutMs = 60_000): Promise<RaceResult> {
  const startAt = String(Date.now() + 2000);
  const results = await Promise.all(
    ['a', 'b'].map((name) => run(process.execPath, [worker, ...target, name, String(rounds), startAt], { timeout: timeoutMs })),
  );
  const stats = results.map((r) => JSON.parse(r.stdout) as { worker: string; won: number[]; conflicts: number });
  assert.deepEqual(
    stats.map((s) => s.won.length),
    [rounds, rounds],
    'each process won its rounds',
  );
  const allWon = stats.flatMap((s) => s.won).sort((a, b) => a - b);
  assert.deepEqual(
    allWon,
    Array.from({ length: 2 * rounds }, (_, i) => i + 1),
    'each version won by exactly one process',
  );
  return { stats, allWon };
}

export function conflictsLine(result: RaceResult): string {
  return `conflicts seen: ${result.stats.map((s) => `${s.worker}=${s.conflicts}`).join(' ')}`;
}
