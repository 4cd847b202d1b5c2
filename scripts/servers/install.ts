// Installs for scripts/services: Debian packages through apt-get (waiting for its locks) and
// the Java services' jars from Maven Central. apt-get and Maven runs go one at a time.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, type RunOptions, run, runOrThrow, say, sleep, tailText, which } from './process.ts';
import { BACKENDS_DIR } from './service.ts';

/** Serialises apt-get (it holds a lock) and Maven (runs share ~/.m2). */
let installChain: Promise<unknown> = Promise.resolve();
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const next = installChain.then(fn, fn);
  installChain = next.catch(() => undefined);
  return next;
}

let aptUpdated = false;
export function aptInstall(packages: string[]): Promise<void> {
  return exclusive(() => aptInstallNow(packages));
}

/** How long apt-get waits for another apt-get or dpkg (unattended-upgrades, say) to release its locks. */
export const APT_LOCK_WAIT_SECONDS = 300;
const APT_LOCK_ERROR = /Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock/;

export interface AptGetOptions extends RunOptions {
  /** Default APT_LOCK_WAIT_SECONDS * 1000. */
  readonly lockWaitMs?: number;
  /** Pause between tries while a lock is held. Default 5000 ms. */
  readonly retryEveryMs?: number;
}

/**
 * `apt-get <args>` that waits for the package locks instead of failing at once.
 * `-o DPkg::Lock::Timeout` makes apt-get wait for dpkg's locks (install), but apt-get update
 * does not apply it to the lists lock (/var/lib/apt/lists/lock, apt 2.6), so a run that failed
 * on a lock, before doing anything, is tried again until the same deadline.
 */
export async function aptGet(what: string, args: readonly string[], options: AptGetOptions = {}): Promise<string> {
  const { lockWaitMs = APT_LOCK_WAIT_SECONDS * 1000, retryEveryMs = 5000, ...runOptions } = options;
  const argv = ['-o', `DPkg::Lock::Timeout=${Math.ceil(lockWaitMs / 1000)}`, ...args];
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    const r = await run('apt-get', argv, runOptions);
    if (r.status === 0) return r.out;
    if (r.status !== null && APT_LOCK_ERROR.test(r.out) && Date.now() + retryEveryMs <= deadline) {
      say(`${what}: another apt-get or dpkg holds the lock; trying again in ${retryEveryMs / 1000} s`);
      await sleep(retryEveryMs);
      continue;
    }
    throw new Error(`${what} failed (exit ${r.status}): apt-get ${argv.join(' ')}\n${tailText(r.out, 60)}`);
  }
}

async function aptInstallNow(packages: string[]): Promise<void> {
  if (!isRoot()) {
    throw new Error(`missing ${packages.join(', ')}: run as root, or install them: apt-get install -y ${packages.join(' ')}`);
  }
  if (which('apt-get') === undefined) throw new Error(`missing ${packages.join(', ')} and no apt-get on this machine`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Installing a server package must not start the system's own instance on our port.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy)
    writeFileSync(policy, '#!/bin/sh\n# eventfold scripts/services: no service starts during apt-get install\nexit 101\n', { mode: 0o755 });
  try {
    say(`apt-get may wait up to ${APT_LOCK_WAIT_SECONDS / 60} minutes for the dpkg lock if another apt-get or dpkg is running`);
    if (!aptUpdated) {
      say('apt-get update');
      await aptGet('apt-get update', ['update', '-q'], { env, timeout: 600_000 });
      aptUpdated = true;
    }
    say(`apt-get install ${packages.join(' ')}`);
    await aptGet('apt-get install', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env, timeout: 1_200_000 });
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

export async function ensureJava(): Promise<void> {
  if (which('java') === undefined) await aptInstall(['openjdk-17-jre-headless']);
  if (which('mvn') === undefined) await aptInstall(['maven']);
}

/** Copies the runtime dependencies of scripts/backends/<name>/pom.xml into <dir>/lib, once per pom version. */
export async function fetchJars(name: string, dir: string): Promise<string> {
  const pom = join(BACKENDS_DIR, name, 'pom.xml');
  const settings = join(BACKENDS_DIR, 'maven-settings.xml');
  const stamp = createHash('sha256').update(readFileSync(pom)).update(readFileSync(settings)).digest('hex').slice(0, 16);
  const lib = join(dir, 'lib');
  const marker = join(lib, '.complete');
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === stamp) return lib;
  await ensureJava();
  say(`${name}: fetching jars from Maven Central (mvn dependency:copy-dependencies)`);
  const tmp = join(dir, 'lib.tmp');
  rmSync(tmp, { recursive: true, force: true });
  const started = Date.now();
  // one Maven at a time: they share the local repository
  await exclusive(() =>
    runOrThrow(
      `${name}: maven`,
      'mvn',
      ['-B', '-q', '-s', settings, '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`, '-DincludeScope=runtime'],
      { timeout: 1_800_000 },
    ),
  );
  writeFileSync(join(tmp, '.complete'), `${stamp}\n`);
  rmSync(lib, { recursive: true, force: true });
  renameSync(tmp, lib);
  say(`${name}: jars ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return lib;
}
