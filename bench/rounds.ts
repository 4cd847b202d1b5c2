// Runs one suite's targets in interleaved rounds: round 1 measures the subject (eventfold),
// then the baseline, round 2 the same again, and so on. Every round gives each target fresh
// state: a new bench directory, hence a new SQLite file or a new Redis key / Kafka topic prefix
// (the prefix is made up on first use inside that directory). A target's server-side data is
// deleted as soon as its round is done, and whatever is left after a failure at the end.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Figures, measure } from './measure.ts';
import type { MemoryFigures } from './memory-probe.ts';
import type { BenchConfig, BenchTarget, Suite } from './target.ts';

const here = dirname(fileURLToPath(import.meta.url));

export type Role = 'subject' | 'baseline';
/** The order of the targets inside every round. */
export const ROLES: readonly Role[] = ['subject', 'baseline'];

/** One target's figures from one round. */
export interface TargetRun {
  readonly name: string;
  readonly figures: Figures;
  /** Null with `--no-memory`, or when the probe failed (logged). */
  readonly memory: MemoryFigures | null;
  /** The target's notes as they read after its round (some count things: retries, forks). */
  readonly notes: readonly string[];
}

export interface RoundRun {
  /** 1-based. */
  readonly round: number;
  readonly subject: TargetRun;
  readonly baseline: TargetRun;
}

export interface RoundOptions {
  readonly rounds: number;
  /** Whether each target's memory is probed (in a child process) after each of its rounds. */
  readonly memory: boolean;
  readonly log: (line: string) => void;
}

/** A target whose store was opened in `dir` and is not cleaned up yet. */
interface OpenedTarget {
  readonly target: BenchTarget;
  readonly dir: string;
}

export async function runRounds(suite: Suite, config: BenchConfig, options: RoundOptions): Promise<RoundRun[]> {
  const { log } = options;
  const root = mkdtempSync(join(tmpdir(), `eventfold-bench-${suite.name}-`));
  log(`data in ${root}`);
  const notCleaned = new Set<OpenedTarget>();
  /** Closes the target and deletes its data (server side and dir); false when that failed (logged). */
  const release = async (opened: OpenedTarget): Promise<boolean> => {
    try {
      await opened.target.close(); // a no-op after a finished measure(); releases connections after a failure
      await opened.target.cleanup?.(opened.dir);
      rmSync(opened.dir, { recursive: true, force: true });
      notCleaned.delete(opened);
      return true;
    } catch (error) {
      log(`  clean-up of ${opened.target.name} (${opened.dir}) failed: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  };

  try {
    const runs: RoundRun[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const pair: Partial<Record<Role, TargetRun>> = {};
      for (const role of ROLES) {
        const target = suite[role]();
        const dir = join(root, `round-${round}`, role);
        mkdirSync(dir, { recursive: true });
        const opened = { target, dir };
        notCleaned.add(opened);
        log(`round ${round}/${options.rounds}, ${target.name}:`);
        const figures = await measure(target, dir, config, log);
        const memory = options.memory ? await probeMemory(suite, role, dir, log) : null;
        pair[role] = { name: target.name, figures, memory, notes: [...target.notes] };
        await release(opened); // a failure is retried at the end
      }
      runs.push({ round, subject: pair.subject!, baseline: pair.baseline! });
    }
    return runs;
  } finally {
    for (const opened of [...notCleaned]) await release(opened);
    rmSync(root, { recursive: true, force: true });
  }
}

/** The memory figures of the store measure() left in `dir`, from a fresh child process. */
async function probeMemory(suite: Suite, role: Role, dir: string, log: (line: string) => void): Promise<MemoryFigures | null> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', join(here, 'memory-probe.ts'), suite.name, role, dir]);
    return JSON.parse(stdout) as MemoryFigures;
  } catch (error) {
    log(`  memory probe of ${role} failed: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  }
}
