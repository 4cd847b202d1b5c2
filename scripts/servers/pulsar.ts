// Pulsar 4.0 standalone (broker + one bookie + RocksDB metadata in one JVM) on 6650/8080.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchJars } from './install.ts';
import { log4j2Config } from './java.ts';
import { type PrivateServer, startPrivateServer } from './private-server.ts';
import { readPidFile, spawnDetached, stopPid } from './process.ts';
import { SERVICES_DIR, type Service } from './service.ts';

export const PULSAR_VERSION = '4.0.7';

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

export function pulsarService(): Service {
  const dir = join(SERVICES_DIR, 'pulsar');
  const pidPath = join(dir, 'pid');
  const node = pulsarNode(dir, join(dir, 'lib'), 6650, 8080);
  return {
    name: 'pulsar',
    ports: [6650, 8080],
    dir,
    log: node.log,
    readyTimeoutMs: 240_000,
    async install() {
      mkdirSync(dir, { recursive: true });
      await fetchJars('pulsar', dir);
    },
    async start() {
      preparePulsar(node, 'Pulsar standalone on loopback');
      spawnDetached('java', pulsarJavaArgs(node, ['-Xms256m', '-Xmx1g', '-XX:MaxDirectMemorySize=1g']), node.log, pidPath, dir);
    },
    probe: () => probePulsar(8080),
    ownPid: () => readPidFile(pidPath),
    async stop(pid) {
      await stopPid(pid, true, 60_000);
      rmSync(pidPath, { force: true });
    },
  };
}

interface PulsarNode {
  readonly lib: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly conf: string;
  readonly log4j: string;
  readonly log: string;
  readonly brokerPort: number;
  readonly webPort: number;
}

function pulsarNode(dir: string, lib: string, brokerPort: number, webPort: number): PulsarNode {
  return {
    lib,
    dir,
    dataDir: join(dir, 'data'),
    conf: join(dir, 'standalone.conf'),
    log4j: join(dir, 'log4j2.properties'),
    log: join(dir, 'pulsar.log'),
    brokerPort,
    webPort,
  };
}

/** Writes standalone.conf and the log config (the data dir is kept: a restart serves what was stored). */
function preparePulsar(node: PulsarNode, header: string): void {
  mkdirSync(node.dataDir, { recursive: true });
  writeFileSync(
    node.conf,
    [
      `# written by scripts/services: ${header}`,
      'clusterName=standalone',
      'bindAddress=127.0.0.1',
      'advertisedAddress=127.0.0.1',
      `brokerServicePort=${node.brokerPort}`,
      `webServicePort=${node.webPort}`,
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
      `journalDirectory=${join(node.dataDir, 'bookkeeper', 'journal')}`,
      '',
    ].join('\n'),
  );
  log4j2Config(node.log4j, {
    'org.apache.bookkeeper': 'warn',
    'org.apache.pulsar.broker.service.ServerCnx': 'warn',
    'org.apache.pulsar.client.impl': 'warn',
    'org.eclipse.jetty': 'warn',
  });
}

function pulsarJavaArgs(node: PulsarNode, memory: readonly string[]): string[] {
  return [
    ...memory,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    '-Dio.netty.tryReflectionSetAccessible=true',
    '-Dpulsar.allocator.exit_on_oom=true',
    '-Dzookeeper.admin.enableServer=false',
    `-Dlog4j2.configurationFile=${node.log4j}`,
    `-Dpulsar.log.dir=${node.dir}`,
    ...JAVA_OPENS,
    '-cp',
    `${node.lib}/*`,
    'org.apache.pulsar.PulsarStandaloneStarter',
    '--config',
    node.conf,
    '--no-functions-worker',
    '--no-stream-storage',
    '--metadata-dir',
    join(node.dataDir, 'metadata'),
    '--bookkeeper-dir',
    join(node.dataDir, 'bookkeeper'),
    '--advertised-address',
    '127.0.0.1',
  ];
}

/** Resolves when the broker on `webPort` is healthy and has its default namespace. */
async function probePulsar(webPort: number): Promise<void> {
  const base = `http://127.0.0.1:${webPort}/admin/v2`;
  const health = await fetch(`${base}/brokers/health`, { signal: AbortSignal.timeout(5000) });
  const body = (await health.text()).trim();
  if (!health.ok || body !== 'ok') throw new Error(`pulsar health answered ${health.status} ${body.slice(0, 200)}`);
  const ns = await fetch(`${base}/namespaces/public`, { signal: AbortSignal.timeout(5000) });
  const list = ns.ok ? ((await ns.json()) as unknown) : undefined;
  if (!Array.isArray(list) || !list.includes('public/default')) {
    throw new Error(`pulsar namespace public/default not there yet (${ns.status})`);
  }
}

// ---------------------------------------------------------------------------------------
// A private Pulsar standalone for tests that stop, kill and restart it
// (test/backends/pulsar/broker-restart): the shared service's jars and config on ports and a
// dir of the caller's, as a child of the calling process (private-server.ts).

export interface PrivatePulsar extends PrivateServer {
  /** `pulsar://127.0.0.1:<brokerPort>` */
  readonly serviceUrl: string;
  /** `http://127.0.0.1:<webPort>` */
  readonly adminUrl: string;
}

export interface PrivatePulsarOptions {
  readonly brokerPort: number;
  readonly webPort: number;
  /** Config, data and log of this broker; created when missing, removed by `destroy`. */
  readonly dir: string;
  /** Default 240 s (the shared service's). */
  readonly readyTimeoutMs?: number;
}

export async function startPrivatePulsar(options: PrivatePulsarOptions): Promise<PrivatePulsar> {
  const { brokerPort, webPort, dir } = options;
  const lib = await fetchJars('pulsar', join(SERVICES_DIR, 'pulsar'));
  mkdirSync(dir, { recursive: true });
  const node = pulsarNode(dir, lib, brokerPort, webPort);
  preparePulsar(node, 'startPrivatePulsar: like the shared pulsar service, on private ports');
  const server = await startPrivateServer({
    label: `private pulsar on ${brokerPort}`,
    ports: [brokerPort, webPort],
    dir,
    log: node.log,
    command: 'java',
    args: pulsarJavaArgs(node, ['-Xms128m', '-Xmx512m', '-XX:MaxDirectMemorySize=512m']),
    probe: () => probePulsar(webPort),
    readyTimeoutMs: options.readyTimeoutMs ?? 240_000,
  });
  return { ...server, serviceUrl: `pulsar://127.0.0.1:${brokerPort}`, adminUrl: `http://127.0.0.1:${webPort}` };
}
