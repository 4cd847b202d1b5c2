// The README's snippets work when pasted: every ```ts block marked `<!-- test: run … -->` runs
// as a program (against the local services), and every block marked `run` or `types`
// type-checks under the project's strict settings. A marker may name a prelude
// (test/examples/readme-preludes/<name>.txt, a fragment: what earlier snippets defined, e.g. the quickstart's
// events and store), put before the block. Imports of 'eventfold…' point at the sources, by
// the package's own "exports" map.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { POSTGRES_URL, uniqueName } from '../services/env.ts';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'test', 'examples', '.readme'); // inside the repo: bare imports resolve from node_modules
const MARKED = /<!-- test: (run|types)((?: [a-z]+=[\w-]+)*) -->\n```ts\n([\s\S]*?)\n```/g;
/** Shell blocks marked `<!-- test: sh -->` run with bash -e in the repository, as a user would paste them there. */
const SHELL = /<!-- test: sh -->\n```sh\n([\s\S]*?)\n```/g;

interface Snippet {
  readonly name: string;
  readonly kind: 'run' | 'types';
  readonly file: string;
}

const EXPORTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> }).exports;

/** `'eventfold/sqlite'` → the source file its "exports" entry is built from. */
function sourceOf(specifier: string): string {
  const key = specifier === 'eventfold' ? '.' : `./${specifier.slice('eventfold/'.length)}`;
  const built = EXPORTS[key]?.default;
  assert.ok(built, `the README imports ${specifier}, which package.json does not export`);
  return join(ROOT, built.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
}

function snippets(): Snippet[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const out: Snippet[] = [];
  for (const match of readme.matchAll(MARKED)) {
    const line = readme.slice(0, match.index).split('\n').length + 2;
    const attrs = Object.fromEntries([...match[2]!.matchAll(/([a-z]+)=([\w-]+)/g)].map((m) => [m[1]!, m[2]!]));
    const name = attrs['name'] ?? `line-${line}`;
    const prelude = attrs['prelude']
      ? readFileSync(join(ROOT, 'test', 'examples', 'readme-preludes', `${attrs['prelude']}.txt`), 'utf8')
      : '';
    const code = `${prelude}\n// README.md line ${line}\n${match[3]}\n`.replace(
      /from '(eventfold(?:\/[a-z]+)?)'/g,
      (_, specifier: string) => `from ${JSON.stringify(`./${relative(OUT, sourceOf(specifier))}`)}`,
    );
    const file = join(OUT, `${name}.ts`);
    writeFileSync(file, code);
    out.push({ name: `${name} (README.md line ${line})`, kind: match[1] as 'run' | 'types', file });
  }
  return out;
}

const all = snippets();

describe("the README's snippets", () => {
  it('there are marked snippets (the markers are found)', () => {
    assert.ok(all.filter((s) => s.kind === 'run').length >= 4, `found ${all.map((s) => s.name).join(', ')}`);
  });

  it('every marked snippet type-checks (strict)', { timeout: 120_000 }, async () => {
    const config = join(OUT, 'tsconfig.json');
    writeFileSync(config, JSON.stringify({ extends: join(ROOT, 'tsconfig.json'), include: [], files: all.map((s) => s.file) }));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      await run(process.execPath, [tsc, '-p', config], { cwd: ROOT });
    } catch (error) {
      assert.fail(`tsc found errors in README snippets:\n${(error as { stdout?: string }).stdout ?? String(error)}`);
    }
  });

  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const match of readme.matchAll(SHELL)) {
    const line = readme.slice(0, match.index).split('\n').length + 2;
    it(`runs in bash: the shell block at README.md line ${line}`, { timeout: 180_000 }, async () => {
      // Node 24 first on PATH, as the npm scripts put it (the block calls npm and npx).
      const path = `${join(ROOT, 'node_modules', 'node', 'bin')}:${process.env['PATH'] ?? ''}`;
      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', match[1]!], {
        cwd: ROOT,
        env: { ...process.env, PATH: path },
        timeout: 170_000,
      });
      assert.ok(stdout.trim().length > 0, 'the commands printed something');
    });
  }

  for (const snippet of all.filter((s) => s.kind === 'run')) {
    it(`runs: ${snippet.name}`, { timeout: 60_000 }, async () => {
      const cwd = mkdtempSync(join(tmpdir(), 'ef-readme-'));
      // A snippet that reads DATABASE_URL gets a database of its own on the local PostgreSQL.
      const database = uniqueName('readme').replaceAll('-', '_');
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${database}`);
        const url = new URL(POSTGRES_URL);
        url.pathname = `/${database}`;
        await run(process.execPath, [snippet.file], { cwd, env: { ...process.env, DATABASE_URL: url.href }, timeout: 55_000 });
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        await admin.end();
        rmSync(cwd, { recursive: true, force: true });
      }
    });
  }
});
