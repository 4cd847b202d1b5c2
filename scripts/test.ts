// npm test: type-check, lint, bring up the backends, run every test/**/*.test.ts with node:test.
//
//   npm test                              everything
//   npm test -- test/services/kafka.test.ts   a subset (paths or globs)
//   npm test -- --test-name-pattern=redis     extra node --test flags pass through
//
// EVENTFOLD_SERVICES=redis,postgres (or none) limits which backends are brought up; the
// default is all five. They stay up afterwards; `scripts/services down` stops them.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureServices, parseNames, REPO_ROOT } from './servers/index.ts';

function step(message: string): void {
  process.stderr.write(`\n[test] ${message}\n`);
}

// 1. types
step('tsc --noEmit -p .');
const tsc = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', REPO_ROOT], {
  cwd: REPO_ROOT,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  step(`type errors: tsc exited ${tsc.status ?? tsc.signal}; no test ran`);
  process.exit(1);
}

// 1b. lint, format and import cycles (Biome; biome.json). `npx biome check --write` fixes most.
step('biome check (lint, format, import cycles)');
const biome = spawnSync(join(REPO_ROOT, 'node_modules', '.bin', 'biome'), ['check', '--colors=off', '--error-on-warnings', REPO_ROOT], {
  cwd: REPO_ROOT,
  stdio: 'inherit',
});
if (biome.status !== 0) {
  step(`lint or format errors: biome exited ${biome.status ?? biome.signal}; no test ran (npx biome check --write fixes most)`);
  process.exit(1);
}

// 2. backends
const wanted = process.env['EVENTFOLD_SERVICES']?.trim();
const names = wanted === 'none' ? [] : parseNames(wanted === undefined || wanted === '' ? [] : [wanted]);
if (names.length > 0) {
  step(`services up: ${names.join(', ')}`);
  try {
    await ensureServices(names);
  } catch (e) {
    step(e instanceof Error ? e.message : String(e));
    process.exit(1);
  }
}

// 3. tests
const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('-'));
const files = args.filter((a) => !a.startsWith('-'));
if (files.length === 0) files.push('test/**/*.test.ts');

const tapDir = mkdtempSync(join(tmpdir(), 'eventfold-test-'));
const tapFile = join(tapDir, 'report.tap');
const runnerArgs = [
  '--test',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tapFile}`,
  ...flags,
  ...files,
];
step(`node ${runnerArgs.join(' ')}`);
const child = spawn(process.execPath, runnerArgs, { cwd: REPO_ROOT, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
const code = await new Promise<number>((resolve) => {
  child.on('exit', (status, signal) => resolve(status ?? (signal === null ? 1 : 128)));
});

// The closing line in the plain form CI understands, from the runner's own tap counts.
try {
  const tap = readFileSync(tapFile, 'utf8');
  const count = (key: string) => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(tap)?.[1] ?? 'NaN');
  const [pass, fail, cancelled, skipped, todo] = ['pass', 'fail', 'cancelled', 'skipped', 'todo'].map(count);
  if ([pass, fail].every(Number.isFinite)) {
    process.stdout.write(`\ntests: ${pass} passed, ${(fail ?? 0) + (cancelled ?? 0)} failed, ${(skipped ?? 0) + (todo ?? 0)} skipped\n`);
  }
} catch {
  // no tap report: the runner's own output has said why
} finally {
  rmSync(tapDir, { recursive: true, force: true });
}
process.exit(code);
