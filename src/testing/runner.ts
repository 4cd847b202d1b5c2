// The test runner the suites register their tests with: node:test, vitest and jest all fit, so
// the package depends on none of them. The suites only need `describe` and `it`; the one hook
// they use (the target's cleanup, after the last test) is optional and named either way.

/** `describe`/`it` of node:test, vitest or jest (`import { describe, it, after } from 'node:test'`). */
export interface TestRunner {
  describe(name: string, fn: () => void): unknown;
  it(name: string, fn: () => Promise<void>): unknown;
  /** node:test's name for the hook that runs after a suite's tests (cleanup). */
  after?(fn: () => Promise<void>): unknown;
  /** vitest's and jest's name for it. */
  afterAll?(fn: () => Promise<void>): unknown;
}

/** Registers `fn` to run after the current suite, with whichever hook the runner has; without one, nothing runs. */
export function afterSuite(runner: TestRunner, fn: () => Promise<void>): void {
  if (runner.after) runner.after(fn);
  else if (runner.afterAll) runner.afterAll(fn);
}

/** A name no other test run uses: `<label>-<time>-<random>` (store names, prefixes, schemas). */
export function uniqueName(label: string): string {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `${label}-${Date.now().toString(36)}-${random}`;
}
