// Pulsar 4.0 standalone (broker + one bookie + RocksDB metadata in one JVM) on 6650/8080.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchJars } from './install.ts';
import { log4j2Config } from './java.ts';
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
