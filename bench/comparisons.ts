// The bench's comparison targets that need packages of their own (Emmett's event stores) live
// in bench/comparisons/<name>/: a package.json, its committed package-lock.json and the
// workload file that imports them, so Node resolves those imports from that directory's own
// node_modules. The root install never fetches them (emmett-sqlite compiles the sqlite3 addon);
// the bench runs `npm ci` there the first time a suite needs one, and again when the lock changed.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchTarget } from './target.ts';

const here = dirname(fileURLToPath(import.meta.url));
const STAMP = '.eventfold-bench-installed';

/** bench/comparisons/<name>. */
export const comparisonDir = (name: string): string => join(here, 'comparisons', name);

/**
 * Installs bench/comparisons/<name>'s dependencies with `npm ci` unless node_modules there was
 * installed from the same package-lock.json (a stamp file holds the lock's hash). npm's output
 * goes to stderr (stdout may carry the JSON report); a failure throws with what to run by hand.
 */
export async function ensureComparison(name: string, log: (line: string) => void): Promise<void> {
  const dir = comparisonDir(name);
  const lockFile = join(dir, 'package-lock.json');
  if (!existsSync(lockFile)) throw new Error(`bench comparison "${name}": ${lockFile} is missing`);
  const hash = createHash('sha256').update(readFileSync(lockFile)).digest('hex');
  const stamp = join(dir, 'node_modules', STAMP);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === hash) return;

  const shown = relative(process.cwd(), dir) || dir;
  const args = ['ci', '--no-audit', '--no-fund'];
  log(`bench: installing the "${name}" comparison's own dependencies: npm ${args.join(' ')} in ${shown} (first use only)`);
  const started = Date.now();
  // npm and the install scripts it runs (node-gyp) use the Node that runs the bench.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
  const outcome = await new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    const child = spawn('npm', args, { cwd: dir, env, stdio: ['ignore', 2, 2] });
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  if (outcome.error || outcome.code !== 0) {
    const why = outcome.error ? outcome.error.message : `exit ${outcome.code ?? outcome.signal}`;
    throw new Error(
      `bench comparison "${name}": npm ${args.join(' ')} in ${dir} failed (${why}); its output is above. ` +
        `Fix it and run \`(cd ${shown} && npm ci)\` by hand, or run another suite.`,
    );
  }
  writeFileSync(stamp, `${hash}\n`);
  log(`bench: "${name}" comparison installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * A target whose code lives in bench/comparisons/<name>/<file> under the export `exportName`:
 * `prepare` installs the comparison and imports the file (the specifier is not a literal, so
 * the root type check never follows it into packages that may not be installed), then `target`
 * builds targets from it.
 */
export function comparisonTarget(
  name: string,
  file: string,
  exportName: string,
): { prepare: (log: (line: string) => void) => Promise<void>; target: () => BenchTarget } {
  let factory: (() => BenchTarget) | undefined;
  return {
    async prepare(log) {
      if (factory) return;
      await ensureComparison(name, log);
      const url = pathToFileURL(join(comparisonDir(name), file)).href;
      const module = (await import(url)) as Record<string, unknown>;
      const found = module[exportName];
      if (typeof found !== 'function') throw new Error(`bench comparison "${name}": ${file} exports no function ${exportName}`);
      factory = found as () => BenchTarget;
    },
    target() {
      if (!factory) throw new Error(`bench comparison "${name}" is not prepared (Suite.prepare runs before the rounds)`);
      return factory();
    },
  };
}
