// Kafka 4.1, KRaft, one combined broker+controller: the shared `kafka` service on 9092/9093,
// and startPrivateKafka(), a broker of the caller's for tests that stop and kill it.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchJars } from './install.ts';
import { log4j2Config } from './java.ts';
import { cmdline, listenerPid, readPidFile, runOrThrow, say, sleep, spawnDetached, stopPid, tailFile, withTimeout } from './process.ts';
import { SERVICES_DIR, type Service } from './service.ts';

export const KAFKA_VERSION = '4.1.2';

export function kafkaService(): Service {
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
// A private Kafka broker for tests that stop, kill and restart it (test/backends/kafka/reliability):
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
      // One argument: a base64url id may start with '-' (1 in 64), which `-t <id>` reads as an option.
      `--cluster-id=${clusterId}`,
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
