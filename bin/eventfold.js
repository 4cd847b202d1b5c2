#!/usr/bin/env node
// The `eventfold` command (package.json "bin"). Like every entry point of the package, it runs
// the build (dist/) when installed from npm, and the TypeScript source with Node's type
// stripping in a checkout of the repository (which has src/ and no build, as its tests and
// examples run): the source is never in the npm package, and a stale build never shadows it.
import { existsSync } from 'node:fs';

// `eventfold tail | head -3`: once the reader has gone, stop quietly, as shell tools do.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = existsSync(source) ? await import(source.href) : await import('../dist/cli/main.js');
const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
// Exit even if a client library left a timer behind; flush stdout first (a pipe may be slow).
process.stdout.write('', () => process.exit(code));
