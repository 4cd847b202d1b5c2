// Local backends for eventfold's tests: Kafka, Pulsar, Redis (a single node and a 3-master
// cluster) and PostgreSQL on loopback.
//
// Nothing here needs Docker. Kafka and Pulsar run from Maven Central jars (fetched with
// Maven's dependency plugin into .services/<name>/lib), Redis and PostgreSQL from Debian's
// packages (apt-get installs them when missing). Every service keeps its config, data and
// log under .services/<name>/ (git-ignored) and runs detached, so it outlives the command
// that started it; a second `up` finds it serving and reuses it.
//
// CLI: scripts/services up|down|status|logs [name...]     (see usage() below)
// API: ensureServices(names), stopServices(names), serviceStatus(names)

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ServiceName = 'kafka' | 'pulsar' | 'redis' | 'redis-cluster' | 'postgres';
export const SERVICE_NAMES: readonly ServiceName[] = ['kafka', 'pulsar', 'redis', 'redis-cluster', 'postgres'];

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Cache and data folder; git-ignored. */
export const SERVICES_DIR = process.env['EVENTFOLD_SERVICES_DIR'] ?? join(REPO_ROOT, '.services');
const BACKENDS_DIR = join(REPO_ROOT, 'scripts', 'backends');

export const KAFKA_VERSION = '4.1.2';
export const PULSAR_VERSION = '4.0.7';

interface Service {
  name: ServiceName;
  /** Ports the service listens on, the client port first. */
  ports: number[];
  dir: string;
  log: string;
  readyTimeoutMs: number;
  install(): Promise<void>;
  start(): Promise<void>;
  /** Resolves when the service really serves; rejects with the reason otherwise. */
  probe(): Promise<void>;
  /** Pid of the process we started (from our pid file), when it is alive. */
  ownPid(): number | undefined;
  /**
   * Services made of several processes (redis-cluster): every live process we started. Their
   * ownPid() answers only when all of them run, so a partly running service gets the missing
   * ones started by start(). Default: [ownPid()].
   */
  ownPids?(): number[];
  /** Every log of a multi-process service, `log` first. Default: [log]. */
  logs?(): string[];
  /** Stops the service (a multi-process service: all of its processes). */
  stop(pid: number): Promise<void>;
}

export interface ServiceStatus {
  name: ServiceName;
  up: boolean;
  ports: number[];
  pid: number | undefined;
  /** Every process of the service (several for redis-cluster). */
  pids: number[];
  ours: boolean;
  rssBytes: number | undefined;
  detail: string;
}

// ---------------------------------------------------------------------------------------
// small helpers

function say(message: string): void {
  process.stderr.write(`[services] ${message}\n`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir === '') continue;
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

interface RunResult {
  status: number | null;
  out: string;
}

interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeout?: number;
  /** In a session of its own, so that what it leaves running escapes a Ctrl-C in our terminal. */
  detached?: boolean;
}

/** Runs a command to its end without blocking the event loop (other services keep starting meanwhile). */
function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      detached: options.detached ?? false,
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const timer =
      options.timeout === undefined
        ? undefined
        : setTimeout(() => {
            chunks.push(Buffer.from(`\n(killed after ${options.timeout} ms)\n`));
            child.kill('SIGKILL');
          }, options.timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolveRun({ status: null, out: String(e) });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolveRun({ status, out: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

async function runOrThrow(what: string, cmd: string, args: string[], options: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.status !== 0) {
    throw new Error(`${what} failed (exit ${r.status}): ${cmd} ${args.join(' ')}\n${tailText(r.out, 60)}`);
  }
  return r.out;
}

function tailText(text: string, lines: number): string {
  const all = text.split('\n');
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  return all.slice(-lines).join('\n');
}

export function tailFile(path: string, lines = 50): string {
  try {
    return tailText(readFileSync(path, 'utf8'), lines);
  } catch {
    return `(no log at ${path})`;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // a zombie still answers kill(0)
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}

function readPidFile(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim().split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 160);
  } catch {
    return '?';
  }
}

/** Pid of the process listening on a TCP port (IPv4 or IPv6), found through /proc. */
export function listenerPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (local === undefined || cols[3] !== '0A') continue; // 0A = LISTEN
      const hexPort = local.slice(local.lastIndexOf(':') + 1);
      if (Number.parseInt(hexPort, 16) === port && cols[9] !== undefined) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const link = readlinkSync(`/proc/${entry}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m?.[1] !== undefined && inodes.has(m[1])) return Number(entry);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return undefined;
}

function portListening(port: number): boolean {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (local === undefined || cols[3] !== '0A') continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) return true;
    }
  }
  return false;
}

/** Resident memory of a process and all its descendants, in bytes. */
export function treeRssBytes(rootPid: number): number | undefined {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  let total = 0;
  let found = false;
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (m?.[1] !== undefined) {
        total += Number(m[1]) * 1024;
        found = true;
      }
    } catch {
      // gone
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return found ? total : undefined;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Serialises apt-get (it holds a lock) and Maven (runs share ~/.m2). */
let installChain: Promise<unknown> = Promise.resolve();
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const next = installChain.then(fn, fn);
  installChain = next.catch(() => undefined);
  return next;
}

let aptUpdated = false;
function aptInstall(packages: string[]): Promise<void> {
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

/** Starts a process detached from us (own session), output appended to the log file. */
function spawnDetached(cmd: string, args: string[], logPath: string, pidPath: string, cwd: string): number {
  const fd = openSync(logPath, 'w');
  try {
    const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', fd, fd], env: process.env });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.unref();
    writeFileSync(pidPath, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

async function stopPid(pid: number, group: boolean, graceMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(group ? -pid : pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await sleep(200);
  }
  say(`pid ${pid} did not stop within ${graceMs} ms: SIGKILL`);
  signal('SIGKILL');
  while (pidAlive(pid)) await sleep(100);
}

// ---------------------------------------------------------------------------------------
// Java services: jars from Maven Central

async function ensureJava(): Promise<void> {
  if (which('java') === undefined) await aptInstall(['openjdk-17-jre-headless']);
  if (which('mvn') === undefined) await aptInstall(['maven']);
}

/** Copies the runtime dependencies of scripts/backends/<name>/pom.xml into <dir>/lib, once per pom version. */
async function fetchJars(name: string, dir: string): Promise<string> {
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

function log4j2Config(path: string, quiet: Record<string, string>): void {
  const lines = [
    'status = warn',
    'appender.out.type = Console',
    'appender.out.name = out',
    'appender.out.layout.type = PatternLayout',
    'appender.out.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = info',
    'rootLogger.appenderRef.out.ref = out',
  ];
  let i = 0;
  for (const [logger, level] of Object.entries(quiet)) {
    lines.push(`logger.q${i}.name = ${logger}`, `logger.q${i}.level = ${level}`);
    i += 1;
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

const JAVA_OPENS = [
  '--add-opens',
  'java.base/java.io=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.nio=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.util.zip=ALL-UNNAMED',
  '--add-opens',
  'java.base/sun.net=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.misc=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.platform=ALL-UNNAMED',
  '--add-opens',
  'java.management/sun.management=ALL-UNNAMED',
  '--add-opens',
  'jdk.management/com.sun.management.internal=ALL-UNNAMED',
];

// ---------------------------------------------------------------------------------------
// Kafka 4.1, KRaft, one combined broker+controller

function kafkaService(): Service {
  const dir = join(SERVICES_DIR, 'kafka');
  const dataDir = join(dir, 'data');
  const pidPath = join(dir, 'pid');
  const log = join(dir, 'kafka.log');
  const props = join(dir, 'server.properties');
  const log4j = join(dir, 'log4j2.properties');
  return {
    name: 'kafka',
    ports: [9092, 9093],
    dir,
    log,
    readyTimeoutMs: 120_000,
    async install() {
      mkdirSync(dir, { recursive: true });
      await fetchJars('kafka', dir);
    },
    async start() {
      const node = { lib: join(dir, 'lib'), dir, dataDir, props, log4j, port: 9092, controllerPort: 9093 };
      await prepareKafka(node, 'Kafka in KRaft mode, one node acting as broker and controller');
      spawnDetached('java', kafkaJavaArgs(node, ['-Xms256m', '-Xmx1g']), log, pidPath, dir);
    },
    probe: () => probeKafka(9092, 'eventfold-services-probe'),
    ownPid: () => readPidFile(pidPath),
    async stop(pid) {
      await stopPid(pid, true, 60_000);
      rmSync(pidPath, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------
// A private Kafka broker for tests that stop, kill and restart it (test/kafka/reliability):
// the same jars, classpath and config shape as the shared `kafka` service above (a smaller
// heap), on ports and a dir of the caller's, as a child of the calling process (not detached),
// so the shared broker on 9092 is never touched.

export interface PrivateKafka {
  /** Bootstrap brokers, `['127.0.0.1:<port>']`. */
  readonly brokers: string[];
  readonly dir: string;
  /** The broker's output, appended across restarts. */
  readonly log: string;
  /** Pid of the running broker, if any. */
  pid(): number | undefined;
  /** Starts the broker on its existing data (after `stop`); resolves once it serves. */
  start(): Promise<void>;
  /** Sends `signal` (default SIGTERM: a controlled shutdown) and waits for the process to exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
  /** `stop(signal)`, then `start()`. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Kills the broker if it runs and removes `dir`. Safe to call more than once. */
  destroy(): Promise<void>;
}

interface KafkaNode {
  readonly lib: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly props: string;
  readonly log4j: string;
  readonly port: number;
  readonly controllerPort: number;
}

/** Writes the node's config and formats its storage once (the cluster id: a random Kafka Uuid, 16 bytes base64url). */
async function prepareKafka(node: KafkaNode, header: string): Promise<void> {
  writeFileSync(node.props, kafkaProperties({ port: node.port, controllerPort: node.controllerPort, dataDir: node.dataDir, header }));
  log4j2Config(node.log4j, { 'state.change.logger': 'warn', 'kafka.request.logger': 'warn', 'org.apache.kafka.controller': 'warn' });
  if (existsSync(join(node.dataDir, 'meta.properties'))) return;
  const clusterId = randomBytes(16).toString('base64url');
  say(`kafka on ${node.port}: formatting storage (cluster id ${clusterId})`);
  await runOrThrow(
    'kafka storage format',
    'java',
    [
      `-Dlog4j2.configurationFile=${node.log4j}`,
      '-cp',
      `${node.lib}/*`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      node.props,
      '--ignore-formatted',
    ],
    { timeout: 120_000 },
  );
}

function kafkaJavaArgs(node: KafkaNode, heap: readonly string[]): string[] {
  return [
    ...heap,
    '-XX:MaxDirectMemorySize=256m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${node.log4j}`,
    `-Dkafka.logs.dir=${node.dir}`,
    '-cp',
    `${node.lib}/*`,
    'kafka.Kafka',
    node.props,
  ];
}

/** Resolves when a metadata call to the broker on `port` lists a broker. */
async function probeKafka(port: number, clientId: string): Promise<void> {
  const { Admin } = await import('@platformatic/kafka');
  const admin = new Admin({ clientId, bootstrapBrokers: [`127.0.0.1:${port}`], connectTimeout: 2000, timeout: 3000, retries: 0 });
  try {
    const metadata = await withTimeout(admin.metadata({ topics: [] }), 5000, 'kafka metadata');
    if (metadata.brokers.size === 0) throw new Error('kafka metadata lists no broker');
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** server.properties of a one-node KRaft Kafka (broker and controller), with the replication settings one node needs. */
function kafkaProperties(o: { port: number; controllerPort: number; dataDir: string; header: string }): string {
  return [
    `# written by scripts/services: ${o.header}`,
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${o.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${o.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${o.dataDir}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'log.retention.hours=24',
    '',
  ].join('\n');
}

export interface PrivateKafkaOptions {
  /** Client (PLAINTEXT) port. */
  readonly port: number;
  /** KRaft controller port. */
  readonly controllerPort: number;
  /** Config, data and log of this broker; created when missing, removed by `destroy`. */
  readonly dir: string;
  /** Default 120 s (the shared service's). */
  readonly readyTimeoutMs?: number;
}

/** Formats storage (once) and starts a private one-node KRaft broker; resolves once it serves. */
export async function startPrivateKafka(options: PrivateKafkaOptions): Promise<PrivateKafka> {
  const { port, controllerPort, dir } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  for (const p of [port, controllerPort]) {
    const holder = listenerPid(p);
    if (holder !== undefined) throw new Error(`private kafka: port ${p} is held by pid ${holder} (${cmdline(holder)})`);
  }
  const lib = await fetchJars('kafka', join(SERVICES_DIR, 'kafka'));
  mkdirSync(dir, { recursive: true });
  const log = join(dir, 'kafka.log');
  const node = {
    lib,
    dir,
    dataDir: join(dir, 'data'),
    props: join(dir, 'server.properties'),
    log4j: join(dir, 'log4j2.properties'),
    port,
    controllerPort,
  };
  await prepareKafka(node, 'startPrivateKafka: like the shared kafka service, on private ports');

  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> = Promise.resolve();
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const probe = (): Promise<void> => probeKafka(port, 'eventfold-private-probe');

  const start = async (): Promise<void> => {
    if (alive()) throw new Error(`private kafka on ${port} already runs (pid ${child?.pid})`);
    const fd = openSync(log, 'a');
    try {
      child = spawn('java', kafkaJavaArgs(node, ['-Xms128m', '-Xmx512m']), { cwd: dir, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const proc = child;
    exited = new Promise<void>((resolveExit) => {
      proc.once('exit', () => resolveExit());
      proc.once('error', (e) => {
        say(`private kafka on ${port}: ${e.message}`);
        resolveExit();
      });
    });
    const deadline = Date.now() + readyTimeoutMs;
    let lastError = 'no answer yet';
    for (;;) {
      try {
        await probe();
        return;
      } catch (e) {
        lastError = e instanceof Error ? e.message : String(e);
      }
      if (!alive()) throw new Error(`private kafka on ${port} exited before serving (last probe: ${lastError})\n${tailFile(log, 30)}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(
          `private kafka on ${port} not serving after ${readyTimeoutMs / 1000} s (last probe: ${lastError})\n${tailFile(log, 30)}`,
        );
      }
      await sleep(250);
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60_000): Promise<void> => {
    if (!alive()) return;
    child!.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (!stopped) {
      say(`private kafka on ${port}: no exit within ${timeoutMs} ms of ${signal}: SIGKILL`);
      child!.kill('SIGKILL');
      await exited;
    }
  };

  await start();
  return {
    brokers: [`127.0.0.1:${port}`],
    dir,
    log,
    pid: () => (alive() ? child!.pid : undefined),
    start,
    stop,
    async restart(signal: NodeJS.Signals = 'SIGTERM') {
      await stop(signal);
      await start();
    },
    async destroy() {
      await stop('SIGKILL', 30_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------
// Pulsar 4.0 standalone (broker + one bookie + RocksDB metadata in one JVM)

function pulsarService(): Service {
  const dir = join(SERVICES_DIR, 'pulsar');
  const dataDir = join(dir, 'data');
  const pidPath = join(dir, 'pid');
  const log = join(dir, 'pulsar.log');
  const conf = join(dir, 'standalone.conf');
  const log4j = join(dir, 'log4j2.properties');
  return {
    name: 'pulsar',
    ports: [6650, 8080],
    dir,
    log,
    readyTimeoutMs: 240_000,
    async install() {
      mkdirSync(dir, { recursive: true });
      await fetchJars('pulsar', dir);
    },
    async start() {
      const lib = join(dir, 'lib');
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(
        conf,
        [
          '# written by scripts/services: Pulsar standalone on loopback',
          'clusterName=standalone',
          'bindAddress=127.0.0.1',
          'advertisedAddress=127.0.0.1',
          'brokerServicePort=6650',
          'webServicePort=8080',
          'webSocketServiceEnabled=true',
          'functionsWorkerEnabled=false',
          'managedLedgerDefaultEnsembleSize=1',
          'managedLedgerDefaultWriteQuorum=1',
          'managedLedgerDefaultAckQuorum=1',
          'allowAutoTopicCreation=true',
          'allowAutoTopicCreationType=non-partitioned',
          'brokerDeleteInactiveTopicsEnabled=false',
          'transactionCoordinatorEnabled=true',
          'systemTopicEnabled=true',
          'topicLevelPoliciesEnabled=true',
          'managedLedgerCacheSizeMB=64',
          // the bookie reads this file too: keep its caches small
          'dbStorage_writeCacheMaxSizeMb=32',
          'dbStorage_readAheadCacheMaxSizeMb=32',
          'dbStorage_rocksDB_blockCacheSize=16777216',
          `journalDirectory=${join(dataDir, 'bookkeeper', 'journal')}`,
          '',
        ].join('\n'),
      );
      log4j2Config(log4j, {
        'org.apache.bookkeeper': 'warn',
        'org.apache.pulsar.broker.service.ServerCnx': 'warn',
        'org.apache.pulsar.client.impl': 'warn',
        'org.eclipse.jetty': 'warn',
      });
      spawnDetached(
        'java',
        [
          '-Xms256m',
          '-Xmx1g',
          '-XX:MaxDirectMemorySize=1g',
          '-XX:+UseG1GC',
          '-XX:MaxGCPauseMillis=20',
          '-Djava.awt.headless=true',
          '-Dio.netty.tryReflectionSetAccessible=true',
          '-Dpulsar.allocator.exit_on_oom=true',
          '-Dzookeeper.admin.enableServer=false',
          `-Dlog4j2.configurationFile=${log4j}`,
          `-Dpulsar.log.dir=${dir}`,
          ...JAVA_OPENS,
          '-cp',
          `${lib}/*`,
          'org.apache.pulsar.PulsarStandaloneStarter',
          '--config',
          conf,
          '--no-functions-worker',
          '--no-stream-storage',
          '--metadata-dir',
          join(dataDir, 'metadata'),
          '--bookkeeper-dir',
          join(dataDir, 'bookkeeper'),
          '--advertised-address',
          '127.0.0.1',
        ],
        log,
        pidPath,
        dir,
      );
    },
    async probe() {
      const health = await fetch('http://127.0.0.1:8080/admin/v2/brokers/health', { signal: AbortSignal.timeout(5000) });
      const body = (await health.text()).trim();
      if (!health.ok || body !== 'ok') throw new Error(`pulsar health answered ${health.status} ${body.slice(0, 200)}`);
      const ns = await fetch('http://127.0.0.1:8080/admin/v2/namespaces/public', { signal: AbortSignal.timeout(5000) });
      const list = ns.ok ? ((await ns.json()) as unknown) : undefined;
      if (!Array.isArray(list) || !list.includes('public/default')) {
        throw new Error(`pulsar namespace public/default not there yet (${ns.status})`);
      }
    },
    ownPid: () => readPidFile(pidPath),
    async stop(pid) {
      await stopPid(pid, true, 60_000);
      rmSync(pidPath, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------
// Redis 7 from Debian

function redisService(): Service {
  const dir = join(SERVICES_DIR, 'redis');
  const dataDir = join(dir, 'data');
  const pidPath = join(dir, 'pid');
  const log = join(dir, 'redis.log');
  const conf = join(dir, 'redis.conf');
  const binary = () => which('redis-server') ?? (existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : undefined);
  return {
    name: 'redis',
    ports: [6379],
    dir,
    log,
    readyTimeoutMs: 30_000,
    async install() {
      mkdirSync(dataDir, { recursive: true });
      if (binary() === undefined) await aptInstall(['redis-server']);
    },
    async start() {
      const bin = binary();
      if (bin === undefined) throw new Error('redis-server not found after install');
      writeFileSync(
        conf,
        [
          '# written by scripts/services',
          'bind 127.0.0.1',
          'port 6379',
          'protected-mode yes',
          'daemonize no',
          `dir ${dataDir}`,
          'appendonly yes',
          'appendfsync everysec',
          'logfile ""',
          '',
        ].join('\n'),
      );
      spawnDetached(bin, [conf], log, pidPath, dir);
    },
    async probe() {
      const answer = await new Promise<string>((resolvePing, reject) => {
        const socket = connect({ host: '127.0.0.1', port: 6379 });
        let data = '';
        socket.setTimeout(3000, () => socket.destroy(new Error('redis PING timed out')));
        socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
        socket.on('data', (chunk) => {
          data += chunk.toString('utf8');
          if (data.includes('\r\n')) {
            socket.end();
            resolvePing(data.trim());
          }
        });
        socket.on('error', reject);
      });
      if (answer !== '+PONG') throw new Error(`redis answered PING with ${answer}`);
    },
    ownPid: () => readPidFile(pidPath),
    async stop(pid) {
      await stopPid(pid, false, 30_000);
      rmSync(pidPath, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------
// Redis Cluster: three masters (no replicas) from the same Debian redis-server

/** Client ports of the cluster's masters; each also listens on port + 10000 (the cluster bus). */
export const REDIS_CLUSTER_PORTS: readonly number[] = [7001, 7002, 7003];

function redisBinary(): string | undefined {
  return which('redis-server') ?? (existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : undefined);
}

function redisCliBinary(): string | undefined {
  return which('redis-cli') ?? (existsSync('/usr/bin/redis-cli') ? '/usr/bin/redis-cli' : undefined);
}

/** One command over a raw RESP connection to 127.0.0.1:port; answers simple, integer and bulk string replies. */
function redisCommand(port: number, args: readonly string[], timeoutMs = 3000): Promise<string> {
  return new Promise((resolveReply, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = Buffer.alloc(0);
    const finish = (error: Error | undefined, reply = '') => {
      socket.destroy();
      if (error) reject(error);
      else resolveReply(reply);
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`127.0.0.1:${port}: ${args[0]} got no answer within ${timeoutMs} ms`)));
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const eol = data.indexOf('\r\n');
      if (eol < 0) return;
      const head = data.subarray(1, eol).toString('utf8');
      switch (data[0]) {
        case 0x24: {
          // '$' bulk string
          const length = Number(head);
          if (length < 0) return finish(undefined, '');
          if (data.length < eol + 2 + length + 2) return; // more to come
          return finish(undefined, data.subarray(eol + 2, eol + 2 + length).toString('utf8'));
        }
        case 0x2d: // '-' error
          return finish(new Error(`127.0.0.1:${port}: ${head}`));
        default: // '+' simple string, ':' integer
          return finish(undefined, head);
      }
    });
    socket.on('error', (e) => finish(e));
  });
}

/** CLUSTER INFO of one node as a map (cluster_state, cluster_slots_assigned, cluster_known_nodes, …). */
async function clusterInfo(port: number): Promise<Map<string, string>> {
  const text = await redisCommand(port, ['CLUSTER', 'INFO']);
  const info = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) info.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return info;
}

function redisClusterService(): Service {
  const dir = join(SERVICES_DIR, 'redis-cluster');
  const log = join(dir, 'cluster.log');
  const nodes = REDIS_CLUSTER_PORTS.map((port) => {
    const nodeDir = join(dir, String(port));
    return { port, dir: nodeDir, conf: join(nodeDir, 'redis.conf'), log: join(nodeDir, 'redis.log'), pidPath: join(nodeDir, 'pid') };
  });
  const livePids = () => nodes.map((n) => readPidFile(n.pidPath)).filter((pid): pid is number => pid !== undefined);
  const where = (n: { port: number; log: string }) => `node 127.0.0.1:${n.port} (log ${n.log})`;
  return {
    name: 'redis-cluster',
    ports: [...REDIS_CLUSTER_PORTS, ...REDIS_CLUSTER_PORTS.map((p) => p + 10000)],
    dir,
    log,
    readyTimeoutMs: 30_000,
    async install() {
      for (const n of nodes) mkdirSync(n.dir, { recursive: true });
      if (redisBinary() === undefined || redisCliBinary() === undefined) await aptInstall(['redis-server', 'redis-tools']);
    },
    async start() {
      const bin = redisBinary();
      const cli = redisCliBinary();
      if (bin === undefined || cli === undefined) throw new Error('redis-server or redis-cli not found after install');
      // Start the nodes that do not run; a node that runs (a partly stopped cluster) is left as it is.
      // nodes.conf is kept across restarts: a restarted node rejoins the cluster it was part of.
      for (const n of nodes) {
        if (readPidFile(n.pidPath) !== undefined) continue;
        writeFileSync(
          n.conf,
          [
            '# written by scripts/services: one master of the loopback Redis Cluster',
            'bind 127.0.0.1',
            `port ${n.port}`,
            'protected-mode yes',
            'daemonize no',
            `dir ${n.dir}`,
            'cluster-enabled yes',
            `cluster-config-file ${join(n.dir, 'nodes.conf')}`,
            'cluster-node-timeout 5000',
            'cluster-announce-ip 127.0.0.1',
            'appendonly yes',
            'appendfsync everysec',
            'logfile ""',
            '',
          ].join('\n'),
        );
        spawnDetached(bin, [n.conf], n.log, n.pidPath, n.dir);
      }
      await Promise.all(
        nodes.map(async (n) => {
          const deadline = Date.now() + 15_000;
          for (;;) {
            try {
              if ((await redisCommand(n.port, ['PING'])) === 'PONG') return;
            } catch {
              // not listening yet
            }
            if (readPidFile(n.pidPath) === undefined) throw new Error(`${where(n)} exited before answering PING`);
            if (Date.now() > deadline) throw new Error(`${where(n)} does not answer PING after 15 s`);
            await sleep(50);
          }
        }),
      );
      const infos = await Promise.all(nodes.map((n) => clusterInfo(n.port)));
      const fresh = infos.every((i) => i.get('cluster_slots_assigned') === '0' && i.get('cluster_known_nodes') === '1');
      if (fresh) {
        const args = ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'];
        say(`redis-cluster: redis-cli ${args.join(' ')}`);
        const r = await run(cli, args, { timeout: 60_000 });
        // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC
        r.out = r.out.replace(/\x1b\[[0-9;]*m/g, ''); // redis-cli colours its report even into a pipe
        writeFileSync(log, `== ${new Date().toISOString()} redis-cli ${args.join(' ')} (exit ${r.status})\n${r.out}\n`, { flag: 'a' });
        if (r.status !== 0) throw new Error(`redis-cli --cluster create failed (exit ${r.status})\n${tailText(r.out, 20)}`);
        return;
      }
      const joined = infos.every(
        (i) => i.get('cluster_slots_assigned') === '16384' && Number(i.get('cluster_known_nodes')) >= nodes.length,
      );
      if (!joined) {
        const states = nodes.map(
          (n, k) => `${n.port}: ${infos[k]?.get('cluster_known_nodes')} known nodes, ${infos[k]?.get('cluster_slots_assigned')} slots`,
        );
        throw new Error(
          `the nodes are neither a new nor a complete cluster (${states.join('; ')}); start over with: scripts/services down redis-cluster && rm -rf ${dir}`,
        );
      }
    },
    async probe() {
      await Promise.all(
        nodes.map(async (n) => {
          const info = await clusterInfo(n.port);
          const state = info.get('cluster_state');
          const assigned = info.get('cluster_slots_assigned');
          if (state !== 'ok' || assigned !== '16384') {
            throw new Error(`127.0.0.1:${n.port}: cluster_state:${state}, cluster_slots_assigned:${assigned}`);
          }
        }),
      );
    },
    ownPid() {
      const pids = nodes.map((n) => readPidFile(n.pidPath));
      return pids.every((pid) => pid !== undefined) ? pids[0] : undefined;
    },
    ownPids: livePids,
    logs: () => [log, ...nodes.map((n) => n.log)],
    async stop() {
      // SIGTERM: each node writes its AOF and nodes.conf and exits; a later start rejoins.
      await Promise.all(
        nodes.map(async (n) => {
          const pid = readPidFile(n.pidPath);
          if (pid !== undefined) await stopPid(pid, false, 30_000);
          rmSync(n.pidPath, { force: true });
        }),
      );
    },
  };
}

// ---------------------------------------------------------------------------------------
// PostgreSQL 15 from Debian: our own cluster, trust on loopback

function pgBinDir(): string | undefined {
  const preferred = '/usr/lib/postgresql/15/bin';
  if (existsSync(join(preferred, 'initdb'))) return preferred;
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const bin = `/usr/lib/postgresql/${v}/bin`;
      if (existsSync(join(bin, 'initdb'))) return bin;
    }
  } catch {
    // none
  }
  const initdb = which('initdb');
  return initdb === undefined ? undefined : dirname(initdb);
}

function postgresService(): Service {
  const dir = join(SERVICES_DIR, 'postgres');
  // The server refuses to run as root: as root it runs as the `postgres` user, which must
  // be able to reach its data dir. When the repo sits where that user cannot go (under
  // /root, say), the cluster lives in /var/tmp instead; `datadir` records where.
  const dataDirFile = join(dir, 'datadir');
  const dataDir = () => (existsSync(dataDirFile) ? readFileSync(dataDirFile, 'utf8').trim() : join(dir, 'data'));
  const log = join(dir, 'postgres.log');
  const asPostgres = (cmd: string, args: string[]): [string, string[]] =>
    isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const pidFromPostmaster = (): number | undefined => readPidFile(join(dataDir(), 'postmaster.pid'));
  return {
    name: 'postgres',
    ports: [5432],
    dir,
    log,
    readyTimeoutMs: 60_000,
    async install() {
      if (pgBinDir() === undefined) await aptInstall(['postgresql']);
      mkdirSync(dir, { recursive: true });
      if (isRoot()) {
        chownSync(dir, pgUid(), pgGid());
        if (!existsSync(dataDirFile) && (await run('runuser', ['-u', 'postgres', '--', 'test', '-w', dir])).status !== 0) {
          const fallback = join('/var/tmp', `eventfold-postgres-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`);
          say(`postgres: user postgres cannot reach ${dir}; the cluster goes to ${fallback}`);
          writeFileSync(dataDirFile, `${fallback}\n`);
        }
      }
    },
    async start() {
      const bin = pgBinDir();
      if (bin === undefined) throw new Error('PostgreSQL binaries not found after install');
      const data = dataDir();
      if (!existsSync(join(data, 'PG_VERSION'))) {
        say(`postgres: initdb ${data}`);
        rmSync(data, { recursive: true, force: true });
        mkdirSync(data, { recursive: true, mode: 0o700 });
        if (isRoot()) chownSync(data, pgUid(), pgGid());
        const [cmd, args] = asPostgres(join(bin, 'initdb'), [
          '-D',
          data,
          '-U',
          'postgres',
          '--auth=trust',
          '-E',
          'UTF8',
          '--locale=C.UTF-8',
        ]);
        await runOrThrow('initdb', cmd, args, { timeout: 120_000 });
        writeFileSync(
          join(data, 'postgresql.auto.conf'),
          [
            '# written by scripts/services',
            "listen_addresses = '127.0.0.1'",
            'port = 5432',
            "unix_socket_directories = ''",
            'max_connections = 200',
            "log_destination = 'stderr'",
            '',
          ].join('\n'),
        );
        if (isRoot()) chownSync(join(data, 'postgresql.auto.conf'), pgUid(), pgGid());
      }
      if (isRoot() && existsSync(log)) chownSync(log, pgUid(), pgGid());
      const [cmd, args] = asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-w', '-t', '60', 'start']);
      const r = await run(cmd, args, { timeout: 90_000, detached: true });
      if (r.status !== 0) throw new Error(`pg_ctl start failed (exit ${r.status})\n${tailText(r.out, 20)}`);
    },
    async probe() {
      const { default: pg } = await import('pg');
      const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
      await admin.connect();
      try {
        const exists = await admin.query("select 1 from pg_database where datname = 'eventfold'");
        if (exists.rowCount === 0) await admin.query('create database eventfold');
      } finally {
        await admin.end();
      }
      const client = new pg.Client({
        host: '127.0.0.1',
        port: 5432,
        user: 'postgres',
        database: 'eventfold',
        connectionTimeoutMillis: 3000,
      });
      await client.connect();
      try {
        const r = await client.query<{ one: number }>('select 1 as one');
        if (r.rows[0]?.one !== 1) throw new Error('postgres: select 1 did not answer 1');
      } finally {
        await client.end();
      }
    },
    ownPid: pidFromPostmaster,
    async stop() {
      const bin = pgBinDir();
      if (bin === undefined) return;
      const [cmd, args] = asPostgres(join(bin, 'pg_ctl'), ['-D', dataDir(), '-m', 'fast', '-w', '-t', '60', 'stop']);
      await runOrThrow('pg_ctl stop', cmd, args, { timeout: 90_000 });
    },
  };
}

let pgIds: { uid: number; gid: number } | undefined;
function pgUser(): { uid: number; gid: number } {
  if (pgIds !== undefined) return pgIds;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const cols = line?.split(':');
  if (cols === undefined || cols[2] === undefined || cols[3] === undefined)
    throw new Error('no postgres user (is the postgresql package installed?)');
  pgIds = { uid: Number(cols[2]), gid: Number(cols[3]) };
  return pgIds;
}
const pgUid = () => pgUser().uid;
const pgGid = () => pgUser().gid;

// ---------------------------------------------------------------------------------------
// the API

const FACTORIES: Record<ServiceName, () => Service> = {
  kafka: kafkaService,
  pulsar: pulsarService,
  redis: redisService,
  'redis-cluster': redisClusterService,
  postgres: postgresService,
};

/** Every live process of ours, for services of one process or several. */
function ownPidsOf(svc: Service): number[] {
  if (svc.ownPids) return svc.ownPids();
  const pid = svc.ownPid();
  return pid === undefined ? [] : [pid];
}

function logsOf(svc: Service): string[] {
  return svc.logs?.() ?? [svc.log];
}

function service(name: ServiceName): Service {
  return FACTORIES[name]();
}

export function parseNames(args: readonly string[]): ServiceName[] {
  if (args.length === 0 || args.includes('all')) return [...SERVICE_NAMES];
  const names: ServiceName[] = [];
  for (const arg of args) {
    for (const part of arg.split(',')) {
      const name = part.trim();
      if (name === '') continue;
      if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
        throw new Error(`unknown service "${name}" (known: ${SERVICE_NAMES.join(', ')})`);
      }
      if (!names.includes(name as ServiceName)) names.push(name as ServiceName);
    }
  }
  return names;
}

async function probeOk(svc: Service): Promise<boolean> {
  try {
    await withTimeout(svc.probe(), 10_000, `${svc.name} probe`);
    return true;
  } catch {
    return false;
  }
}

async function waitReady(svc: Service, startedPid: () => number | undefined): Promise<void> {
  const deadline = Date.now() + svc.readyTimeoutMs;
  let lastError = 'no answer yet';
  for (;;) {
    try {
      await withTimeout(svc.probe(), 10_000, `${svc.name} probe`);
      return;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
    }
    const pid = startedPid();
    if (pid === undefined && !svc.ports.some(portListening)) {
      throw new Error(`${svc.name} exited before serving (last probe: ${lastError})`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${svc.name} not serving after ${svc.readyTimeoutMs / 1000} s (last probe: ${lastError})`);
    }
    await sleep(500);
  }
}

export interface EnsureResult {
  name: ServiceName;
  reused: boolean;
  seconds: number;
}

async function ensureOne(svc: Service): Promise<EnsureResult> {
  const started = Date.now();
  const seconds = () => (Date.now() - started) / 1000;
  if (await probeOk(svc)) return { name: svc.name, reused: true, seconds: seconds() };

  const own = svc.ownPid();
  if (own !== undefined) {
    // ours, alive, not serving yet: most likely still starting (another `up` started it)
    say(`${svc.name}: pid ${own} is running, waiting for it to serve`);
    await waitReady(svc, () => svc.ownPid());
    return { name: svc.name, reused: true, seconds: seconds() };
  }
  const mine = new Set(ownPidsOf(svc)); // a partly running multi-process service: start() adds the rest
  for (const port of svc.ports) {
    const holder = listenerPid(port);
    if (holder !== undefined && !mine.has(holder)) {
      // someone else holds the port: give it the same time to come up, never start a second copy
      say(`${svc.name}: port ${port} is held by pid ${holder} (${cmdline(holder)}), waiting for it to serve`);
      await waitReady(svc, () => (pidAlive(holder) ? holder : undefined));
      return { name: svc.name, reused: true, seconds: seconds() };
    }
  }

  await svc.install();
  say(`${svc.name}: starting`);
  await svc.start();
  await waitReady(svc, () => svc.ownPid());
  return { name: svc.name, reused: false, seconds: seconds() };
}

/**
 * Makes sure each named service is installed, running on loopback and really serving.
 * Reuses a service that already serves. Throws (after printing the tail of the failed
 * services' logs) when one cannot be brought up.
 */
export async function ensureServices(names: readonly ServiceName[] = SERVICE_NAMES): Promise<EnsureResult[]> {
  mkdirSync(SERVICES_DIR, { recursive: true });
  const outcomes = await Promise.allSettled(names.map((name) => ensureOne(service(name))));
  const results: EnsureResult[] = [];
  const failures: string[] = [];
  outcomes.forEach((outcome, i) => {
    const name = names[i] as ServiceName;
    if (outcome.status === 'fulfilled') {
      results.push(outcome.value);
      const s = service(name);
      say(
        `${name}: ${outcome.value.reused ? 'already serving' : 'started'} on 127.0.0.1:${s.ports.join(',')} (${outcome.value.seconds.toFixed(1)} s)`,
      );
    } else {
      const s = service(name);
      const message = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
      failures.push(`${name}: ${message}`);
      const logs = logsOf(s);
      const lines = logs.length > 1 ? 20 : 50;
      process.stderr.write(
        `\n[services] ${name} FAILED: ${message}\n${logs.map((l) => `[services] last ${lines} lines of ${l}:\n${tailFile(l, lines)}\n`).join('')}\n`,
      );
    }
  });
  if (failures.length > 0) throw new Error(`services not up:\n  ${failures.join('\n  ')}`);
  return results;
}

/** Stops the services that scripts/services started (by their pid files); leaves others alone. */
export async function stopServices(names: readonly ServiceName[] = SERVICE_NAMES): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      const svc = service(name);
      const pids = ownPidsOf(svc);
      if (pids.length === 0) {
        const holder = svc.ports.map(listenerPid).find((p) => p !== undefined);
        say(
          holder === undefined
            ? `${name}: not running`
            : `${name}: not started from this checkout (pid ${holder} holds the port): left alone`,
        );
        return;
      }
      say(`${name}: stopping pid ${pids.join(', ')}`);
      await svc.stop(pids[0] as number);
      say(`${name}: stopped`);
    }),
  );
}

export async function serviceStatus(names: readonly ServiceName[] = SERVICE_NAMES): Promise<ServiceStatus[]> {
  return Promise.all(
    names.map(async (name) => {
      const svc = service(name);
      const up = await probeOk(svc);
      const own = ownPidsOf(svc);
      const holders = [...new Set(svc.ports.map(listenerPid).filter((p): p is number => p !== undefined))];
      const pids = own.length > 0 ? own : holders;
      const sizes = pids.map(treeRssBytes).filter((b): b is number => b !== undefined);
      const rssBytes = sizes.length === 0 ? undefined : sizes.reduce((a, b) => a + b, 0);
      let detail = up ? 'serving' : pids.length === 0 ? 'not running' : 'running, not serving';
      if (pids.length > 0 && own.length === 0) detail += ' (not started from this checkout)';
      return { name, up, ports: svc.ports, pid: pids[0], pids, ours: own.length > 0, rssBytes, detail };
    }),
  );
}

export function serviceLog(name: ServiceName): string {
  return service(name).log;
}

/** Every log of the service (one per node for redis-cluster). */
export function serviceLogs(name: ServiceName): string[] {
  return logsOf(service(name));
}

// ---------------------------------------------------------------------------------------
// CLI

function usage(): string {
  return [
    'usage: scripts/services <command> [name...]',
    '',
    'commands:',
    '  up [name...]       install what is missing, start, wait until serving (reuses running ones)',
    '  down [name...]     stop the services this script started',
    '  status [name...]   service, pid, ports, up/down, resident memory',
    '  logs [name...]     last 50 lines of each service log',
    '  restart [name...]  down, then up',
    '',
    `names: ${SERVICE_NAMES.join(', ')} (default: all)`,
    `cache and data: ${SERVICES_DIR}`,
  ].join('\n');
}

function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'up':
        await ensureServices(parseNames(rest));
        return 0;
      case 'down':
        await stopServices(parseNames(rest));
        return 0;
      case 'restart':
        await stopServices(parseNames(rest));
        await ensureServices(parseNames(rest));
        return 0;
      case 'status': {
        const rows = await serviceStatus(parseNames(rest));
        const lines = [['SERVICE', 'STATE', 'PID', 'PORTS', 'RSS', 'DETAIL']];
        for (const r of rows) {
          lines.push([
            r.name,
            r.up ? 'up' : 'down',
            r.pids.length === 0 ? '-' : r.pids.join(','),
            r.ports.join(','),
            formatBytes(r.rssBytes),
            r.detail,
          ]);
        }
        const widths = lines[0]?.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length))) ?? [];
        for (const l of lines)
          process.stdout.write(
            `${l
              .map((c, i) => c.padEnd(widths[i] ?? 0))
              .join('  ')
              .trimEnd()}\n`,
          );
        return rows.every((r) => r.up) ? 0 : 3;
      }
      case 'logs':
        for (const name of parseNames(rest)) {
          for (const log of serviceLogs(name)) process.stdout.write(`==> ${log} <==\n${tailFile(log, 50)}\n\n`);
        }
        return 0;
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        process.stdout.write(`${usage()}\n`);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`unknown command "${command}"\n${usage()}\n`);
        return 2;
    }
  } catch (e) {
    process.stderr.write(`[services] ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
