// The suites on a runner shaped like vitest's or jest's: `describe`, `it` whose callback gets no
// arguments (no node:test context), and `afterAll` instead of `after`. A tiny runner collects
// the tests, runs them in order and then the hooks: every test must pass and the cleanup run.
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { it } from 'node:test';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { runConformance, type TestRunner } from '../../src/testing/index.ts';

function collectingRunner() {
  const tests: { name: string; fn: () => Promise<void> }[] = [];
  const hooks: (() => Promise<void>)[] = [];
  const path: string[] = [];
  const runner: TestRunner = {
    describe: (name, fn) => {
      path.push(name);
      fn();
      path.pop();
    },
    it: (name, fn) => void tests.push({ name: [...path, name].join(' > '), fn: () => fn() }),
    afterAll: (fn) => void hooks.push(fn),
  };
  return { runner, tests, hooks };
}

it('runs the conformance suite with describe/it/afterAll and argument-less test callbacks', async () => {
  const { runner, tests, hooks } = collectingRunner();
  const memory = new Map<string, DatabaseSync>();
  let cleanedUp = false;
  runConformance(runner, {
    name: 'sqlite (memory, vitest-shaped runner)',
    driver: (storeName) => {
      let db = memory.get(storeName);
      if (!db) {
        db = new DatabaseSync(':memory:');
        memory.set(storeName, db);
      }
      return sqlite({ database: db });
    },
    cleanup: async () => {
      for (const db of memory.values()) db.close();
      cleanedUp = true;
    },
  });
  assert.equal(hooks.length, 1, 'the cleanup went to afterAll');
  const failed: string[] = [];
  for (const t of tests) await t.fn().catch((error: unknown) => failed.push(`${t.name}: ${String(error)}`));
  for (const hook of hooks) await hook();
  assert.deepEqual(failed, []);
  assert.equal(tests.length, 25);
  assert.ok(tests.some((t) => t.name.endsWith('stores protobuf payloads byte for byte')));
  assert.ok(cleanedUp);
});

it('leaves the protobuf test out on request, and reports a driver that loses data on reopen', async () => {
  const { runner, tests } = collectingRunner();
  runConformance(runner, () => sqlite(), { protobuf: false }); // a new empty database per open: no reopen
  assert.equal(tests.length, 24);
  assert.ok(!tests.some((t) => t.name.includes('protobuf')));
  const reopen = tests.find((t) => t.name.endsWith('keeps independent positions per group and resumes after the store is reopened'));
  await assert.rejects(reopen!.fn(), assert.AssertionError);
});
