// The README's demo command must keep working: run it as a user would and check its story.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

it('npm run demo: the orders story runs to the end on the embedded store', async () => {
  const main = new URL('../../examples/orders/main.ts', import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [main], { timeout: 60_000 });
  // The demo asserts each step itself and exits non-zero when one does not behave.
  assert.match(stdout, /All \d+ steps behaved as expected/);
  assert.match(stdout, /ExpectedVersionConflictError/);
  assert.match(stdout, /started from the snapshot of version \d+/);
});

it("the README's quickstart runs as printed", async () => {
  const file = new URL('../../examples/quickstart.ts', import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [file], { timeout: 30_000 });
  assert.match(stdout, /account 42: \{ balanceCents: 500 \} at version 2/);
  assert.match(stdout, /refused: \[eventfold\] insufficient funds/);
  assert.match(stdout, /at version 1: \{ balanceCents: 1000 \}/);
});
