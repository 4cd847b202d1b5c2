// scripts/services' apt-get wrapper: waits for the package locks instead of failing at once.
// A fake apt-get on PATH stands in for the real one (the real one would need root and would
// touch the machine's packages); it logs its arguments and fails on a lock as often as told.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { APT_LOCK_WAIT_SECONDS, aptGet } from '../../scripts/servers/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-apt-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fakes = 0;
/** A fake apt-get that fails `lockFailures` times on the lists lock, then exits `finalStatus`. */
function fakeAptGet(lockFailures: number, finalStatus = 0): { env: NodeJS.ProcessEnv; calls: () => string[] } {
  const bin = join(dir, `bin-${fakes++}`);
  mkdirSync(bin);
  const script = join(bin, 'apt-get');
  writeFileSync(
    script,
    `#!/bin/sh
echo "$*" >> "${bin}/calls"
n=$(wc -l < "${bin}/calls")
if [ "$n" -le ${lockFailures} ]; then
  echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
  echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
  exit 100
fi
if [ ${finalStatus} -ne 0 ]; then echo "E: Unable to locate package nope" >&2; exit ${finalStatus}; fi
echo "Reading package lists... Done"
`,
  );
  chmodSync(script, 0o755);
  return {
    env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` },
    calls: () => readFileSync(join(bin, 'calls'), 'utf8').trimEnd().split('\n'),
  };
}

test('apt-get: every call waits up to 5 minutes for the dpkg lock (-o DPkg::Lock::Timeout=300)', async () => {
  assert.equal(APT_LOCK_WAIT_SECONDS, 300);
  const apt = fakeAptGet(0);
  await aptGet('apt-get update', ['update', '-q'], { env: apt.env });
  await aptGet('apt-get install', ['install', '-y', '-q', 'redis-server'], { env: apt.env });
  assert.deepEqual(apt.calls(), ['-o DPkg::Lock::Timeout=300 update -q', '-o DPkg::Lock::Timeout=300 install -y -q redis-server']);
});

test('apt-get: a run refused on a lock (apt-get update ignores DPkg::Lock::Timeout) is tried again', async () => {
  const apt = fakeAptGet(2);
  const out = await aptGet('apt-get update', ['update', '-q'], { env: apt.env, retryEveryMs: 10 });
  assert.match(out, /Reading package lists/);
  assert.equal(apt.calls().length, 3);
});

test('apt-get: any other failure is thrown at once, with apt-get output', async () => {
  const apt = fakeAptGet(0, 100);
  await assert.rejects(
    aptGet('apt-get install', ['install', '-y', 'nope'], { env: apt.env, retryEveryMs: 10 }),
    /apt-get install failed \(exit 100\)[\s\S]*Unable to locate package nope/,
  );
  assert.equal(apt.calls().length, 1);
});

test('apt-get: a lock still held at the deadline is an error naming the lock', async () => {
  const apt = fakeAptGet(1000);
  const started = Date.now();
  await assert.rejects(
    aptGet('apt-get update', ['update'], { env: apt.env, lockWaitMs: 300, retryEveryMs: 50 }),
    /apt-get update failed \(exit 100\)[\s\S]*Could not get lock/,
  );
  assert.ok(Date.now() - started < 5000);
  const calls = apt.calls();
  assert.ok(calls.length >= 2 && calls.length <= 7, `${calls.length} tries in 300 ms at one per 50 ms`);
  assert.ok(
    calls.every((c) => c.startsWith('-o DPkg::Lock::Timeout=1 ')),
    calls[0],
  );
});
