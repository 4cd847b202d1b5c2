// Runs the `eventfold` bin as a user would: a child process of Node (node_modules/.bin/node, the
// Node the package's scripts use) with package.json's bin entry, capturing stdout, stderr and
// the exit code.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
export const BIN = join(ROOT, pkg.bin['eventfold']!);
export const NODE = join(ROOT, 'node_modules', '.bin', 'node');
/** An events module for --events: today's Deposited, Withdrawn and Renamed (v2). */
export const EVENTS = join(ROOT, 'test', 'cli', 'fixtures', 'events.ts');

export interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment without EVENTFOLD_URL (a test names the store) plus `env`. */
function environment(env: Record<string, string>): NodeJS.ProcessEnv {
  const { EVENTFOLD_URL: _, ...rest } = process.env;
  return { ...rest, ...env };
}

export function start(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(NODE, [BIN, ...args], { cwd: ROOT, env: environment(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

export function finished(child: ChildProcess): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export function eventfold(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  return finished(start(args, env));
}

/** stdout as JSON lines. */
export function jsonLines(result: Result): Record<string, unknown>[] {
  return result.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A table's rows (header first) as arrays of cells split on runs of 2+ spaces. */
export function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s{2,}/));
}

/**
 * Resolves once `done` holds for everything the stream has sent since this call; rejects after
 * `timeoutMs` with what it got. Call it before causing the output: a flowing stream does not
 * replay what it emitted before a listener was attached.
 */
export function outputUntil(
  stream: NodeJS.ReadableStream,
  done: (text: string) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(text.slice(-500))}`));
    }, timeoutMs);
    const onData = (d: string | Buffer) => {
      text += d.toString();
      if (!done(text)) return;
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(text);
    };
    stream.on('data', onData);
  });
}
