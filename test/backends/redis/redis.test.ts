// Redis-only behaviour beyond the conformance suite, against real redis-server processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import { createEventStore, DriverError, InvalidArgumentError, InvalidStreamNameError, type RecordedEvent } from '../../../src/index.ts';
import { redis, RedisKeys } from '../../../src/backends/redis/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { REDIS_URL, uniqueName } from '../../services/env.ts';
import { conflictsLine, raceTwoProcesses } from '../../support/race.ts';

const events = [Deposited, Withdrawn] as const;
const dir = mkdtempSync(join(tmpdir(), 'eventfold-redis-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function keysOf(prefix: string): Promise<string[]> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 1000 })) keys.push(...batch);
  await client.close();
  return keys.sort();
}

describe('redis: two processes', () => {
  it('racing on one stream: every version won by exactly one process, no gaps, no duplicates', async (t) => {
    const prefix = uniqueName('race');
    const rounds = 150;
    const { stats, allWon } = await raceTwoProcesses(['redis', REDIS_URL, prefix], rounds);
    t.diagnostic(conflictsLine({ stats, allWon }));

    const store = createEventStore({ driver: redis({ url: REDIS_URL, prefix, partitions: 4 }), events });
    const read: RecordedEvent<ReturnType<typeof Deposited>>[] = [];
    for await (const e of store.readStream('account-shared')) read.push(e as never);
    assert.deepEqual(
      read.map((e) => e.version),
      allWon,
    );
    for (const s of stats) {
      for (const v of s.won) assert.equal(read[v - 1]!.metadata.worker, s.worker, `version ${v} is the event of its winner`);
    }
    let logCount = 0;
    for await (const _ of store.readAll()) logCount++;
    assert.equal(logCount, 2 * rounds, 'the partition log holds each event once');
    await store.close();
  });
});

describe('redis: connection', () => {
  it('a server that cannot be reached fails the first operation at once with a DriverError, never hangs', async () => {
    const store = createEventStore({ driver: redis({ url: 'redis://127.0.0.1:6390' }), events });
    const started = Date.now();
    await assert.rejects(store.streamVersion('account-1'), (error: unknown) => {
      assert.ok(error instanceof DriverError);
      assert.match(error.message, /\[eventfold\] \[redis\] open failed: .*ECONNREFUSED/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'it did not wait for retries');
    await store.close();
  });
});

describe('redis: hostile names', () => {
  it('cannot reach another key: only the documented key shapes exist after hostile appends', async () => {
    const prefix = uniqueName('hostile');
    const store = createEventStore({ driver: redis({ url: REDIS_URL, prefix, partitions: 4 }), events });
    await store.append('account-1', Deposited({ amount: 1 }));
    const before = await keysOf(prefix);
    for (const name of ['account-1:x', 'account-1}', '{p0}', 'x*', '../account-1', 'account-1\r\nDEL x', 'ef:g:grp', 'a b']) {
      await assert.rejects(store.append(name, Deposited({ amount: 1 })), InvalidStreamNameError);
    }
    assert.throws(() => store.subscribe({ group: 'g:*', handler: () => undefined }), InvalidArgumentError);
    assert.throws(() => redis({ prefix: 'a:{b}' }), InvalidArgumentError);
    assert.deepEqual(await keysOf(prefix), before);
    const keys = new RedisKeys(prefix);
    const p = store.partitionOf('account-1');
    assert.deepEqual(
      before,
      [keys.stream(p, 'account-1'), keys.all(p), keys.ids(p)].sort(),
      'only the stream, its partition log and id index',
    );
    await store.close();
  });
});

// A private redis-server per test, so restarting it disturbs no other test.
function startRedis(port: number, dataDir: string, fsync: 'everysec' | 'always'): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--save', '', '--appendonly', 'yes', '--appendfsync', fsync],
    { stdio: 'ignore' },
  );
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const probe = async (): Promise<void> => {
      const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const loading = (await client.info('persistence')).includes('loading:1');
        await client.close();
        if (!loading) return resolve(child);
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || child.exitCode !== null) return reject(new Error(`redis-server on ${port} did not start`));
      setTimeout(() => void probe(), 50);
    };
    void probe();
  });
}

async function appendsAcrossRestart(restart: (server: ChildProcess) => Promise<void>, fsync: 'everysec' | 'always', port: number) {
  const dataDir = mkdtempSync(join(dir, `aof-${fsync}-`));
  let server = await startRedis(port, dataDir, fsync);
  const store = createEventStore({
    driver: redis({ url: `redis://127.0.0.1:${port}`, prefix: 'restart', partitions: 2, client: { socket: { reconnectStrategy: 50 } } }),
    events,
  });
  const acknowledged: string[] = [];
  let failures = 0;
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const event = Deposited({ amount: i + 1 });
      // An append whose reply was lost is retried with the same event: stored once either way.
      for (;;) {
        try {
          await store.append(`account-${i % 5}`, event);
          acknowledged.push(event.id);
          break;
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 400));
  await restart(server);
  server = await startRedis(port, dataDir, fsync);
  await new Promise((r) => setTimeout(r, 400));
  stop = true;
  await writer;
  const stored: string[] = [];
  for await (const e of store.readAll()) stored.push(e.id);
  await store.close();
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  return { acknowledged, stored, failures };
}

describe('redis: restart with AOF on', () => {
  it('a graceful restart (appendfsync everysec) during appends keeps every acknowledged append, once', async (t) => {
    const result = await appendsAcrossRestart(
      async (server) => {
        server.kill('SIGTERM'); // redis fsyncs the AOF on shutdown
        await new Promise((r) => server.once('exit', r));
      },
      'everysec',
      6391,
    );
    t.diagnostic(`acknowledged ${result.acknowledged.length}, failed tries during the restart ${result.failures}`);
    assert.ok(result.acknowledged.length > 20 && result.failures > 0, 'appends really ran across the restart');
    const stored = new Set(result.stored);
    assert.equal(stored.size, result.stored.length, 'no event stored twice');
    assert.deepEqual(
      result.acknowledged.filter((id) => !stored.has(id)),
      [],
      'no acknowledged append lost',
    );
  });

  it('a kill -9 (appendfsync always) during appends keeps every acknowledged append, once', async (t) => {
    const result = await appendsAcrossRestart(
      async (server) => {
        server.kill('SIGKILL');
        await new Promise((r) => server.once('exit', r));
      },
      'always',
      6392,
    );
    t.diagnostic(`acknowledged ${result.acknowledged.length}, failed tries during the restart ${result.failures}`);
    assert.ok(result.acknowledged.length > 20 && result.failures > 0, 'appends really ran across the crash');
    const stored = new Set(result.stored);
    assert.equal(stored.size, result.stored.length, 'no event stored twice');
    assert.deepEqual(
      result.acknowledged.filter((id) => !stored.has(id)),
      [],
      'no acknowledged append lost',
    );
  });

  it('waitForAof is refused with a clear error where the server lacks WAITAOF', async (t) => {
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    const version = /redis_version:(\d+)\.(\d+)/.exec(await client.info('server'));
    await client.close();
    const hasWaitAof = Number(version?.[1]) > 7 || (Number(version?.[1]) === 7 && Number(version?.[2]) >= 2);
    const store = createEventStore({
      driver: redis({ url: REDIS_URL, prefix: uniqueName('aof'), waitForAof: { local: 1, replicas: 0, timeoutMs: 1000 } }),
      events,
    });
    if (hasWaitAof) {
      t.diagnostic(`redis ${version?.[0]} has WAITAOF: checking that appends wait for it`);
      await store.append('account-1', Deposited({ amount: 1 }));
    } else {
      t.diagnostic(`redis ${version?.[0]}: no WAITAOF, checking the refusal`);
      await assert.rejects(store.append('account-1', Deposited({ amount: 1 })), /WAITAOF \(Redis >= 7\.2\)/);
    }
    await store.close();
  });
});
