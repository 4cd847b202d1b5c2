// Kafka 4.1, KRaft, one combined broker+controller: the shared `kafka` service on 9092/9093,
// and startPrivateKafka(), a broker of the caller's for tests that stop and kill it.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchJars } from './install.ts';
import { log4j2Config } from './java.ts';
import { type PrivateServer, startPrivateServer } from './private-server.ts';
import { readPidFile, runOrThrow, say, spawnDetached, stopPid, withTimeout } from './process.ts';
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

export interface PrivateKafka extends PrivateServer {
  /** Bootstrap brokers, `['127.0.0.1:<port>']`. */
  readonly brokers: string[];
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
  const lib = await fetchJars('kafka', join(SERVICES_DIR, 'kafka'));
  mkdirSync(dir, { recursive: true });
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
  const server = await startPrivateServer({
    label: `private kafka on ${port}`,
    ports: [port, controllerPort],
    dir,
    log: join(dir, 'kafka.log'),
    command: 'java',
    args: kafkaJavaArgs(node, ['-Xms128m', '-Xmx512m']),
    probe: () => probeKafka(port, 'eventfold-private-probe'),
    readyTimeoutMs: options.readyTimeoutMs ?? 120_000,
  });
  return { ...server, brokers: [`127.0.0.1:${port}`] };
}
