// npm run pack-check: is the npm package what a user needs, and only that?
//
//   1. `npm run build` (a clean dist/), then `npm pack` into a temp folder;
//   2. the tarball's contents: LICENSE and NOTICE present, no `src/**/*.ts`, every `exports`
//      target present, every relative path a .d.ts or .js refers to inside the tarball, every
//      bare import a dependency, peer dependency or Node built-in, any source map
//      self-contained (sourcesContent; the build makes none today), and the file count and unpacked size printed;
//   3. a fresh project that installs the tarball with only its peer dependencies (plus
//      typescript, @types/node and zod for the consumer file), but not those of INSTALLED_LATER;
//   4. every subpath in `exports` imported at run time with this Node: its named exports are
//      exactly the value exports of the matching src/ entry file;
//   5. a consumer .ts file using the public API end to end, type-checked with `strict`,
//      `skipLibCheck: false`, `nodenext`, then run with this Node (so the types and the code
//      need none of INSTALLED_LATER);
//   6. INSTALLED_LATER installed, and a consumer of what they enable (telemetry) run.
//
// Exits 1 with a list of what is wrong on any problem. EVENTFOLD_PACK_KEEP=1 keeps the temp
// folder (it is kept anyway when the check fails).
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const started = performance.now();
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license?: string;
  exports: Record<string, { types?: string; default?: string }>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

/** Named exports that must be there whatever the src/ entry files say (a floor, not the full list). */
const REQUIRED_EXPORTS: Record<string, readonly string[]> = {
  '.': ['createEventStore', 'defineEvent', 'defineAggregate', 'EventStore', 'EventfoldError', 'jsonCodec'],
  './sqlite': ['sqlite', 'SqliteDriver'],
  './redis': ['redis', 'RedisDriver'],
  './kafka': ['kafka', 'KafkaDriver', 'kafkaProjector'],
  './pulsar': ['pulsar', 'PulsarDriver', 'pulsarProjector'],
  './protobuf': ['protobufCodec'],
  './testing': ['deciderSpec', 'storeSpec', 'runConformance', 'runConsumerGroupConformance'],
};

/**
 * Files allowed a dynamic import() of a computed specifier, each for a reason no static
 * specifier can serve (every other one is a problem: the check cannot follow it).
 */
const COMPUTED_IMPORTS: Record<string, string> = {
  'bin/eventfold.js': 'runs src/cli/main.ts in a checkout of the repository, dist/cli/main.js (static) otherwise',
  'dist/cli/events-module.js': "imports the user's --events module, a path given on the command line",
  'dist/testing/conformance/group-worker.js': "imports the driver module a consumer-group conformance target names (the user's driver)",
};

/**
 * Packages the consumer installs although it should not have to, each for a defect of a peer
 * dependency's own types that `skipLibCheck: false` brings out (the check fails on any other).
 */
const TYPE_WORKAROUNDS: readonly { install: string; why: string }[] = [
  {
    install: '@types/debug@^4',
    why: "@platformatic/kafka 1.35 has `import debug from 'debug'` in dist/utils.d.ts but no @types/debug among its dependencies (2.12 lists none either), so tsc says TS7016",
  },
];

/**
 * Optional peer dependencies the consumer does NOT install at first: eventfold must type-check
 * (skipLibCheck false) and run without them. Step 6 then installs them and runs what needs them.
 */
const INSTALLED_LATER: Record<string, string> = {
  '@opentelemetry/api': 'telemetry: loaded only when installed; public types never name it (docs/architecture/telemetry.md)',
};

const work = mkdtempSync(join(tmpdir(), 'eventfold-pack-'));
let failed = false;
/** What is wrong so far; each step fails with the whole list. */
const problems: string[] = [];

function step(message: string): void {
  process.stderr.write(`\n[pack-check] ${message} (at ${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
}

function fail(problems: string | readonly string[]): never {
  const list = typeof problems === 'string' ? [problems] : problems;
  process.stderr.write(`\n[pack-check] FAILED (${list.length} problem${list.length === 1 ? '' : 's'}):\n`);
  for (const p of list) process.stderr.write(`  - ${p.replace(/\n/g, '\n    ')}\n`);
  process.stderr.write(`[pack-check] temp folder kept: ${work}\n`);
  failed = true;
  process.exit(1);
}

function run(what: string, cmd: string, args: readonly string[], options: SpawnSyncOptions & { capture?: boolean } = {}): string {
  const { capture = false, ...rest } = options;
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    maxBuffer: 64 * 1024 * 1024,
    ...rest,
  });
  if (r.error) fail(`${what}: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = capture ? `\n${String(r.stdout ?? '')}${String(r.stderr ?? '')}`.trimEnd() : '';
    fail(`${what} failed (exit ${r.status ?? r.signal}): ${cmd} ${args.join(' ')}${out}`);
  }
  return capture ? String(r.stdout ?? '') : '';
}

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full, base));
    else out.push(relative(base, full).split('\\').join('/'));
  }
  return out.sort();
}

const kB = (bytes: number) => `${(bytes / 1000).toFixed(1)} kB`;

process.on('exit', () => {
  if (!failed && process.env['EVENTFOLD_PACK_KEEP'] !== '1') rmSync(work, { recursive: true, force: true });
});

// 1. build and pack ------------------------------------------------------------------------
// The names each subpath must export, from src/ as it is built (see step 4).
const subpaths = Object.keys(pkg.exports);
const expectedExports = (): Record<string, string[]> =>
  Object.fromEntries(
    subpaths.map((s) => [s, [...valueExports(sourceOf(pkg.exports[s]?.default ?? fail(`exports["${s}"] has no default`)))].sort()]),
  );
const expected = expectedExports();

step('npm run build');
run('build', 'npm', ['run', 'build']);

step(`npm pack (into ${work}/pack)`);
const packDir = join(work, 'pack');
mkdirSync(packDir);
// Built just above: --ignore-scripts keeps the prepack hook from building a second time.
const packJson = run('npm pack', 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], { capture: true });
const packed = (JSON.parse(packJson) as Array<{ filename: string; entryCount: number; unpackedSize: number; size: number }>)[0];
if (packed === undefined) fail(`npm pack printed no package: ${packJson}`);
const tarball = join(packDir, packed.filename);
if (!existsSync(tarball)) fail(`npm pack reported ${packed.filename} but ${tarball} does not exist`);

// 2. contents, from the tarball itself ------------------------------------------------------
const extracted = join(work, 'extracted');
mkdirSync(extracted);
run('tar', 'tar', ['-xzf', tarball, '-C', extracted]);
const pkgRoot = join(extracted, 'package');
const files = listFiles(pkgRoot);
const fileSet = new Set(files);
const unpacked = files.reduce((sum, f) => sum + statSync(join(pkgRoot, f)).size, 0);

if (files.length !== packed.entryCount) problems.push(`npm pack says ${packed.entryCount} files, the tarball holds ${files.length}`);

// license
if (pkg.license !== 'Apache-2.0') problems.push(`package.json license is ${JSON.stringify(pkg.license)}, expected "Apache-2.0"`);
if (!fileSet.has('LICENSE')) problems.push('no LICENSE in the tarball');
else {
  const text = readFileSync(join(pkgRoot, 'LICENSE'), 'utf8');
  for (const needle of [
    'Apache License',
    'Version 2.0, January 2004',
    'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION',
    'END OF TERMS AND CONDITIONS',
  ]) {
    if (!text.includes(needle)) problems.push(`LICENSE is not the full Apache License 2.0 text (no "${needle}")`);
  }
}
if (!fileSet.has('NOTICE')) problems.push('no NOTICE in the tarball');
else if (!/^Copyright \d{4} /m.test(readFileSync(join(pkgRoot, 'NOTICE'), 'utf8')))
  problems.push('NOTICE has no "Copyright <year> <holder>" line');

// no second copy of the source
const sources = files.filter((f) => f.startsWith('src/') || (/\.[cm]?tsx?$/.test(f) && !/\.d\.[cm]?ts$/.test(f)));
if (sources.length > 0)
  problems.push(
    `TypeScript sources in the tarball (${sources.length}): ${sources.slice(0, 10).join(', ')}${sources.length > 10 ? ', …' : ''}`,
  );
const tests = files.filter((f) => /\.test\.(js|d\.ts)$/.test(f));
if (tests.length > 0) problems.push(`test files in the tarball: ${tests.join(', ')}`);

// exports
for (const [subpath, target] of Object.entries(pkg.exports)) {
  for (const cond of ['types', 'default'] as const) {
    const t = target[cond];
    if (t === undefined) problems.push(`exports["${subpath}"] has no "${cond}"`);
    else if (!fileSet.has(posix.normalize(t))) problems.push(`exports["${subpath}"].${cond} = ${t} is not in the tarball`);
  }
}

// bin
for (const [name, target] of Object.entries(pkg.bin ?? {})) {
  if (!fileSet.has(posix.normalize(target))) problems.push(`bin["${name}"] = ${target} is not in the tarball`);
}

// what the .d.ts and .js files refer to
const allowedPackages = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const packageName = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec));

/** The tarball file a relative specifier in `from` resolves to under nodenext, or undefined. */
function resolveRelative(from: string, spec: string, declaration: boolean): string | undefined {
  const target = posix.normalize(posix.join(posix.dirname(from), spec));
  const candidates = [target];
  if (declaration) {
    const m = /^(.*)\.([cm]?)(?:ts|tsx|js|jsx)$/.exec(target);
    if (m) candidates.push(`${m[1]}.d.${m[2]}ts`);
  }
  return candidates.find((c) => fileSet.has(c));
}

function specifiersOf(file: string, text: string): { spec: string; typeRef?: boolean }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS);
  const out: { spec: string; typeRef?: boolean }[] = [];
  for (const ref of sf.referencedFiles) out.push({ spec: ref.fileName.startsWith('.') ? ref.fileName : `./${ref.fileName}` });
  for (const ref of sf.typeReferenceDirectives) out.push({ spec: ref.fileName, typeRef: true });
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      out.push({ spec: node.moduleSpecifier.text });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push({ spec: node.argument.literal.text });
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      out.push({ spec: node.moduleReference.expression.text });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteralLike(arg)) out.push({ spec: arg.text });
      else if (COMPUTED_IMPORTS[file] === undefined) problems.push(`${file}: a dynamic import() of a computed specifier (cannot check it)`);
    } else if (ts.isModuleDeclaration(node) && ts.isStringLiteral(node.name)) {
      out.push({ spec: node.name.text });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  const map = /^\/\/# sourceMappingURL=(.+)$/m.exec(text)?.[1]?.trim();
  if (map !== undefined && !map.startsWith('data:')) out.push({ spec: map.startsWith('.') ? map : `./${map}` });
  return out;
}

let declarationFiles = 0;
for (const file of files) {
  const declaration = /\.d\.[cm]?ts$/.test(file);
  if (!declaration && !/\.[cm]?js$/.test(file)) continue;
  if (declaration) declarationFiles++;
  const text = readFileSync(join(pkgRoot, file), 'utf8');
  for (const { spec, typeRef } of specifiersOf(file, text)) {
    if (spec.startsWith('.') || spec.startsWith('/')) {
      if (spec.startsWith('/')) problems.push(`${file}: absolute path ${spec}`);
      else if (resolveRelative(file, spec, declaration) === undefined)
        problems.push(`${file}: refers to ${spec}, which is not in the tarball`);
      else if (!declaration && !/\.(js|mjs|cjs|json|map)$/.test(spec))
        problems.push(`${file}: imports ${spec}, which Node cannot load as JavaScript`);
    } else if (typeRef) {
      // `/// <reference types="node" />`: @types/node is the consumer's; anything else must be a dependency.
      if (spec !== 'node' && !allowedPackages.has(`@types/${spec}`) && !allowedPackages.has(spec))
        problems.push(`${file}: reference types="${spec}" is not a dependency`);
    } else if (!builtins.has(spec) && !spec.startsWith('node:') && !allowedPackages.has(packageName(spec))) {
      problems.push(`${file}: imports "${spec}", which is neither a dependency, a peer dependency nor a Node built-in`);
    }
  }
}
if (declarationFiles === 0) problems.push('no .d.ts files in the tarball');

// source maps: debuggable without src/ (inlineSources)
for (const file of files.filter((f) => f.endsWith('.map'))) {
  try {
    const map = JSON.parse(readFileSync(join(pkgRoot, file), 'utf8')) as {
      file?: string;
      sources?: string[];
      sourcesContent?: (string | null)[];
    };
    const generated = map.file === undefined ? undefined : posix.join(posix.dirname(file), map.file);
    if (generated === undefined || !fileSet.has(generated)) problems.push(`${file}: "file" ${map.file} is not in the tarball`);
    const sources = map.sources ?? [];
    const contents = map.sourcesContent ?? [];
    if (sources.length === 0) problems.push(`${file}: no sources`);
    sources.forEach((source, i) => {
      if (typeof contents[i] !== 'string' && !fileSet.has(posix.normalize(posix.join(posix.dirname(file), source)))) {
        problems.push(`${file}: source ${source} is neither inlined (sourcesContent) nor in the tarball`);
      }
    });
  } catch (e) {
    problems.push(`${file}: not a JSON source map (${e instanceof Error ? e.message : String(e)})`);
  }
}

const byKind = new Map<string, { count: number; bytes: number }>();
for (const f of files) {
  const kind = /\.d\.[cm]?ts$/.test(f) ? '.d.ts' : /\.map$/.test(f) ? '.map' : /\.[cm]?js$/.test(f) ? '.js' : 'other';
  const k = byKind.get(kind) ?? { count: 0, bytes: 0 };
  k.count++;
  k.bytes += statSync(join(pkgRoot, f)).size;
  byKind.set(kind, k);
}
process.stdout.write(
  `[pack-check] ${packed.filename}: ${files.length} files, unpacked ${kB(unpacked)} (${unpacked} bytes), tarball ${kB(packed.size)}\n` +
    `[pack-check]   ${[...byKind].map(([kind, k]) => `${kind} ${k.count} files ${kB(k.bytes)}`).join(', ')}\n`,
);
if (problems.length > 0) fail(problems);

// 3. a fresh project with the tarball -------------------------------------------------------
const consumer = join(work, 'consumer');
mkdirSync(consumer);
writeFileSync(
  join(consumer, 'package.json'),
  `${JSON.stringify({ name: 'eventfold-pack-consumer', private: true, type: 'module' }, null, 2)}\n`,
);
const devRange = (name: string): string => {
  const range = pkg.devDependencies?.[name];
  if (range === undefined) fail(`package.json devDependencies has no ${name} (the consumer project installs the same range)`);
  return `${name}@${range}`;
};
const peers = Object.entries(pkg.peerDependencies ?? {})
  .filter(([name]) => INSTALLED_LATER[name] === undefined)
  .map(([name, range]) => `${name}@${range}`);
for (const [name, why] of Object.entries(INSTALLED_LATER))
  process.stdout.write(`[pack-check] note: the consumer starts without ${name}: ${why}\n`);
const installs = [
  tarball,
  ...peers,
  devRange('typescript'),
  devRange('@types/node'),
  devRange('zod'),
  ...TYPE_WORKAROUNDS.map((w) => w.install),
];
for (const w of TYPE_WORKAROUNDS) process.stdout.write(`[pack-check] note: the consumer also installs ${w.install}: ${w.why}\n`);
step(`npm install in ${consumer}: ${installs.map((i) => (i === tarball ? packed.filename : i)).join(' ')}`);
run('npm install', 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...installs], { cwd: consumer });
const installed = join(consumer, 'node_modules', pkg.name);
if (!existsSync(join(installed, 'package.json'))) fail(`${installed} was not installed`);

// 4. run-time imports of every subpath ------------------------------------------------------
/** Value exports (what `import * as m` has at run time) of a src/ entry file, following `export *`. */
function valueExports(file: string, seen = new Set<string>()): Set<string> {
  const names = new Set<string>();
  if (seen.has(file)) return names;
  seen.add(file);
  if (!existsSync(file)) fail(`${relative(ROOT, file)} (the source of an exports entry) does not exist`);
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st)) {
      if (st.isTypeOnly) continue;
      if (st.exportClause === undefined) {
        if (!st.moduleSpecifier || !ts.isStringLiteral(st.moduleSpecifier)) continue;
        for (const n of valueExports(resolve(dirname(file), st.moduleSpecifier.text), seen)) if (n !== 'default') names.add(n);
      } else if (ts.isNamespaceExport(st.exportClause)) names.add(st.exportClause.name.text);
      else for (const el of st.exportClause.elements) if (!el.isTypeOnly) names.add(el.name.text);
      continue;
    }
    if (ts.isExportAssignment(st)) {
      names.add('default');
      continue;
    }
    const modifiers = ts.canHaveModifiers(st) ? (ts.getModifiers(st) ?? []) : [];
    if (!modifiers.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) || modifiers.some((m) => m.kind === ts.SyntaxKind.DeclareKeyword))
      continue;
    const isDefault = modifiers.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword);
    if (ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isEnumDeclaration(st)) {
      if (isDefault) names.add('default');
      else if (st.name) names.add(st.name.text);
    } else if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) {
        if (ts.isIdentifier(d.name)) names.add(d.name.text);
        else problems.push(`${relative(ROOT, file)}: destructured export (cannot list its names)`);
      }
    }
  }
  return names;
}

/** src/ file a `./dist/….js` export target is built from (tsconfig.build.json: rootDir src, outDir dist). */
function sourceOf(target: string): string {
  const m = /^\.\/dist\/(.+)\.js$/.exec(target);
  if (!m) fail(`exports target ${target} is not ./dist/<path>.js: teach scripts/pack-check.ts where its source is`);
  return join(ROOT, 'src', `${m[1]}.ts`);
}

for (const subpath of Object.keys(REQUIRED_EXPORTS)) {
  if (!subpaths.includes(subpath)) problems.push(`package.json exports has no "${subpath}"`);
}
if (problems.length > 0) fail(problems);

step(`import ${subpaths.map((s) => (s === '.' ? pkg.name : `${pkg.name}${s.slice(1)}`)).join(', ')} with node ${process.version}`);
const probe = `
const out = {};
for (const subpath of ${JSON.stringify(subpaths)}) {
  const specifier = subpath === '.' ? ${JSON.stringify(pkg.name)} : ${JSON.stringify(pkg.name)} + subpath.slice(1);
  try {
    const m = await import(specifier);
    out[subpath] = { exports: Object.fromEntries(Object.keys(m).sort().map((k) => [k, typeof m[k]])) };
  } catch (e) {
    out[subpath] = { error: String(e && e.stack || e) };
  }
}
process.stdout.write(JSON.stringify(out));
`;
const probeOut = run('import probe', process.execPath, ['--input-type=module', '--eval', probe], { cwd: consumer, capture: true });
const imported = JSON.parse(probeOut) as Record<string, { exports?: Record<string, string>; error?: string }>;
for (const subpath of subpaths) {
  const got = imported[subpath];
  const label = subpath === '.' ? pkg.name : `${pkg.name}${subpath.slice(1)}`;
  if (got?.exports === undefined) {
    problems.push(`import("${label}") failed: ${got?.error ?? 'no result'}`);
    continue;
  }
  const names = Object.keys(got.exports);
  const want = expected[subpath] ?? [];
  const missing = want.filter((n) => !names.includes(n));
  const extra = names.filter((n) => !want.includes(n));
  if (missing.length > 0)
    problems.push(
      `import("${label}") lacks ${missing.join(', ')} (exported by ${relative(ROOT, sourceOf(pkg.exports[subpath]?.default ?? ''))})`,
    );
  if (extra.length > 0) problems.push(`import("${label}") has ${extra.join(', ')}, which its source does not export`);
  for (const name of REQUIRED_EXPORTS[subpath] ?? []) {
    if (got.exports[name] !== 'function')
      problems.push(`import("${label}").${name} is ${got.exports[name] ?? 'missing'}, expected a function`);
  }
  process.stdout.write(`[pack-check]   ${label}: ${names.length} exports (${names.join(', ')})\n`);
}
if (problems.length > 0) {
  if (JSON.stringify(expectedExports()) !== JSON.stringify(expected))
    problems.push('src/ entry files changed while this check ran: run it again');
  fail(problems);
}

// 5. a strict consumer, type-checked and run ------------------------------------------------
writeFileSync(
  join(consumer, 'tsconfig.json'),
  `${JSON.stringify(
    {
      compilerOptions: {
        target: 'es2023',
        lib: ['es2023'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        noUncheckedIndexedAccess: true,
        noImplicitOverride: true,
        verbatimModuleSyntax: true,
        types: ['node'],
      },
      files: ['consumer.ts'],
    },
    null,
    2,
  )}\n`,
);
writeFileSync(join(consumer, 'consumer.ts'), consumerSource(pkg.name));
const tsc = join(consumer, 'node_modules', 'typescript', 'bin', 'tsc');
const tscVersion = run('tsc --version', process.execPath, [tsc, '--version'], { cwd: consumer, capture: true }).trim();
step(`tsc -p ${consumer} (${tscVersion}; strict, skipLibCheck false, nodenext)`);
const check = spawnSync(process.execPath, [tsc, '-p', consumer, '--pretty', 'false'], {
  cwd: consumer,
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
});
if (check.status !== 0) {
  // One entry per diagnostic: tsc indents the lines that continue the one above.
  const lines: string[] = [];
  for (const line of `${check.stdout}${check.stderr}`.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line) && lines.length > 0) lines[lines.length - 1] += `\n${line}`;
    else lines.push(line);
  }
  const ours = lines.filter((l) => l.startsWith(`node_modules/${pkg.name}/`));
  const theirs = lines.filter((l) => /^node_modules\//.test(l) && !ours.includes(l));
  const consumerErrors = lines.filter((l) => !ours.includes(l) && !theirs.includes(l));
  fail([
    `the strict consumer does not type-check (tsc exit ${check.status ?? check.signal}): ${ours.length} error(s) in ${pkg.name}'s .d.ts, ${theirs.length} in other packages' types, ${consumerErrors.length} in consumer.ts or elsewhere`,
    ...ours.map((l) => `${pkg.name} .d.ts: ${l}`),
    ...theirs.map((l) => `dependency types: ${l}`),
    ...consumerErrors.map((l) => `consumer: ${l}`),
  ]);
}

step(`node consumer.ts (node ${process.version})`);
const ran = run('consumer.ts', process.execPath, ['consumer.ts'], { cwd: consumer, capture: true });
process.stdout.write(`${ran.trimEnd().replace(/^/gm, '[pack-check]   consumer: ')}\n`);
if (!/^consumer ok$/m.test(ran)) fail(`consumer.ts exited 0 but did not print "consumer ok":\n${ran}`);

// 6. the optional peers installed later: telemetry with @opentelemetry/api, from the installed package
const later = Object.keys(INSTALLED_LATER).map(
  (name) => `${name}@${pkg.peerDependencies?.[name] ?? fail(`${name} is not a peer dependency`)}`,
);
step(`npm install ${later.join(' ')}; node telemetry-consumer.mjs`);
run('npm install', 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...later], { cwd: consumer });
writeFileSync(join(consumer, 'telemetry-consumer.mjs'), telemetryConsumerSource(pkg.name));
const traced = run('telemetry-consumer.mjs', process.execPath, ['telemetry-consumer.mjs'], { cwd: consumer, capture: true });
process.stdout.write(`${traced.trimEnd().replace(/^/gm, '[pack-check]   telemetry consumer: ')}\n`);
if (!/^telemetry ok$/m.test(traced)) fail(`telemetry-consumer.mjs exited 0 but did not print "telemetry ok":\n${traced}`);

// The installed bin runs the build (the tarball has no src/): --help, and a command on a store.
for (const name of Object.keys(pkg.bin ?? {})) {
  const bin = join(consumer, 'node_modules', '.bin', name);
  step(`${name} --help; ${name} stats --url sqlite::memory: --json (the installed bin)`);
  run(`${name} --help`, process.execPath, [bin, '--help'], { cwd: consumer, capture: true });
  const stats = run(`${name} stats`, process.execPath, [bin, 'stats', '--url', 'sqlite::memory:', '--json'], {
    cwd: consumer,
    capture: true,
  });
  if (!/"streams":0/.test(stats)) fail(`${name} stats printed no stream count: ${stats}`);
}

process.stdout.write(
  `[pack-check] ok: ${packed.filename}, ${files.length} files, unpacked ${kB(unpacked)}, tarball ${kB(packed.size)}; ` +
    `${subpaths.length} subpaths imported, strict consumer type-checked and run; ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
);

/**
 * With @opentelemetry/api installed (no SDK): the store loads it from where the package is
 * installed, `telemetry: true` is accepted, and a tracer provider passed in gets the spans.
 */
function telemetryConsumerSource(name: string): string {
  return `// Written by eventfold's scripts/pack-check.ts: telemetry from the published package.
import assert from 'node:assert/strict';
import { z } from 'zod';
import { createEventStore, defineEvent } from '${name}';
import { sqlite } from '${name}/sqlite';

const Noted = defineEvent({ type: 'Noted', schema: z.object({ note: z.string() }) });
const names = [];
const tracerProvider = {
  getTracer: (scope, version) => {
    assert.equal(scope, '${name}');
    assert.equal(typeof version, 'string');
    return {
      startSpan: (spanName) => {
        names.push(spanName);
        return {
          isRecording: () => true,
          spanContext: () => ({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }),
          setAttribute() {},
          setAttributes() {},
          recordException() {},
          setStatus() {},
          end() {},
        };
      },
    };
  },
};
const store = createEventStore({ driver: sqlite(), events: [Noted], telemetry: { tracerProvider } });
await store.append('notes-1', Noted({ note: 'hello' }));
await store.close();
assert.deepEqual(names, ['eventfold.append']);
const plain = createEventStore({ driver: sqlite(), events: [Noted], telemetry: true });
await plain.append('notes-1', Noted({ note: 'no SDK registered' }));
await plain.close();
console.log('telemetry ok');
`;
}

/** The consumer: the public API end to end, from the installed package only. */
function consumerSource(name: string): string {
  return `// Written by eventfold's scripts/pack-check.ts: a user of the published package.
import assert from 'node:assert/strict';
import { StructSchema } from '@bufbuild/protobuf/wkt';
import { z } from 'zod';
import {
  CommandRejectedError,
  createEventStore,
  defineAggregate,
  defineEvent,
  everyNEvents,
  ExpectedVersionConflictError,
  InvalidArgumentError,
  type TelemetryOptions,
  type EventOf,
  type EventStore,
  type RecordedEvent,
} from '${name}';
import { kafka, KafkaDriver, type KafkaDriverOptions } from '${name}/kafka';
import { protobufCodec } from '${name}/protobuf';
import { redis, RedisDriver, type RedisDriverOptions } from '${name}/redis';
import { sqlite, SqliteDriver } from '${name}/sqlite';
import { deciderSpec, runConformance, storeSpec, type TestRunner } from '${name}/testing';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_proof?: T): void {}

const Deposited = defineEvent({ type: 'Deposited', schema: z.object({ amount: z.number().int().positive() }) });
const Withdrawn = defineEvent({
  type: 'Withdrawn',
  schemaVersion: 2,
  schema: z.object({ amountCents: z.number().int().positive() }),
  upcasters: { 1: (v1) => ({ amountCents: (v1 as { amount: number }).amount * 100 }) },
});
const events = [Deposited, Withdrawn] as const;
type AccountEvent = EventOf<typeof events>;

const driver = sqlite();
assert.ok(driver instanceof SqliteDriver);
const store = createEventStore({ driver, events });
expectType<Equal<typeof store, EventStore<AccountEvent>>>();

const first = await store.append('account-1', [Deposited({ amount: 10 }, { metadata: { correlationId: 'req-1' } })], { expectedVersion: 'no_stream' });
assert.equal(first.nextExpectedVersion, 1);
await store.append('account-1', { type: 'Withdrawn', data: { amountCents: 300 } }, { expectedVersion: first.nextExpectedVersion });
await assert.rejects(store.append('account-1', Deposited({ amount: 1 }), { expectedVersion: 0 }), ExpectedVersionConflictError);

const read: RecordedEvent<AccountEvent>[] = [];
for await (const e of store.readStream('account-1')) {
  read.push(e);
  if (e.type === 'Deposited') {
    expectType<Equal<typeof e.data, { amount: number }>>();
    assert.equal(e.data.amount, 10);
  } else {
    expectType<Equal<typeof e.type, 'Withdrawn'>>();
    expectType<Equal<typeof e.data, { amountCents: number }>>();
    assert.equal(e.data.amountCents, 300);
  }
  expectType<Equal<typeof e.version, number>>();
  assert.ok(e.time instanceof Date);
}
assert.deepEqual(read.map((e) => [e.type, e.version]), [['Deposited', 1], ['Withdrawn', 2]]);

const Account = defineAggregate({
  name: 'account',
  events,
  initialState: () => ({ balanceCents: 0 }),
  evolve: (state, event) =>
    event.type === 'Deposited'
      ? { balanceCents: state.balanceCents + event.data.amount * 100 }
      : { balanceCents: state.balanceCents - event.data.amountCents },
  decide: (command: { kind: 'withdraw'; cents: number }, state) => {
    if (command.cents > state.balanceCents) throw new CommandRejectedError('insufficient funds');
    return Withdrawn({ amountCents: command.cents });
  },
  snapshot: { policy: everyNEvents(2), schemaVersion: 1 },
});
const accounts = store.aggregate(Account);
const handled = await accounts.handle('1', { kind: 'withdraw', cents: 200 }, { retries: 2 });
expectType<Equal<typeof handled.state, { balanceCents: number }>>();
assert.deepEqual([handled.state, handled.version], [{ balanceCents: 500 }, 3]);
await assert.rejects(accounts.handle('1', { kind: 'withdraw', cents: 1_000_000 }), CommandRejectedError);
const loaded = await accounts.load('1');
assert.deepEqual([loaded.state, loaded.version], [{ balanceCents: 500 }, 3]);
await store.close();

// Protobuf payloads (a well-known message type, so no generated code is needed).
const Noted = defineEvent({ type: 'Noted', schema: z.object({ note: z.string() }) });
const pbStore = createEventStore({ driver: sqlite(), events: [Noted], codec: protobufCodec({ messages: { Noted: StructSchema } }) });
await pbStore.append('notes-1', Noted({ note: 'hello' }));
for await (const e of pbStore.readStream('notes-1')) assert.deepEqual(e.data, { note: 'hello' });
await pbStore.close();

// eventfold/testing: given/when/then on the aggregate, in memory and through a store.
const spec = deciderSpec(Account);
spec.given([Deposited({ amount: 5 })]).when({ kind: 'withdraw', cents: 200 }).then([Withdrawn({ amountCents: 200 })]);
spec.given([]).when({ kind: 'withdraw', cents: 1 }).thenThrows(CommandRejectedError, 'insufficient funds');
const specStore = createEventStore({ driver: sqlite(), events });
await storeSpec(specStore, Account).given([{ type: 'Deposited', data: { amount: 1 } }]).when({ kind: 'withdraw', cents: 100 }).then([{ type: 'Withdrawn', data: { amountCents: 100 } }]);
await specStore.close();
assert.throws(() => spec.given([]).when({ kind: 'withdraw', cents: 0 }).then([]), /spec failed/);
// The conformance suite registers its tests with any runner's describe/it.
const registered: string[] = [];
const runner: TestRunner = { describe: (_name, fn) => fn(), it: (name) => void registered.push(name) };
runConformance(runner, () => sqlite());
assert.ok(registered.length > 20, 'the suite registered its tests');
// @opentelemetry/api is not installed here: telemetry is off by default, and refused when asked for.
const telemetry: TelemetryOptions = { tracerProvider: { getTracer: () => ({}) } };
assert.throws(() => createEventStore({ driver: sqlite(), events, telemetry }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('@opentelemetry/api'));
assert.throws(() => createEventStore({ driver: sqlite(), events, telemetry: true }), InvalidArgumentError);

// Type-level only: never called (it would need the servers, or must not compile).
function typeOnly(): void {
  const redisOptions: RedisDriverOptions = { url: 'redis://127.0.0.1:6379' };
  const kafkaOptions: KafkaDriverOptions = { brokers: ['127.0.0.1:9092'] };
  const r: RedisDriver = redis(redisOptions);
  const k: KafkaDriver = kafka(kafkaOptions);
  createEventStore({ driver: r, events });
  createEventStore({ driver: k, events });
  // @ts-expect-error: the payload is checked against the schema
  Deposited({ amount: 'ten' });
  // @ts-expect-error: a type the store does not know
  void store.append('account-1', { type: 'Closed', data: {} });
  // @ts-expect-error: a command the aggregate does not take
  void accounts.handle('1', { kind: 'deposit', cents: 1 });
  // @ts-expect-error: the spec's events are checked against the schemas
  spec.given([{ type: 'Deposited', data: { amount: 'ten' } }]);
  void (async () => {
    for await (const e of store.readStream('account-1')) {
      // @ts-expect-error: not narrowed, so \`data\` is a union without \`amount\` on every member
      void e.data.amount;
    }
  })();
}
void typeOnly;
console.log('consumer ok');
`;
}
