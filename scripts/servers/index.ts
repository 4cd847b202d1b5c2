// Local backends for eventfold's tests: Kafka, Pulsar, Redis (a single node and a 3-master
// cluster) and PostgreSQL on loopback.
//
// Nothing here needs Docker. Kafka and Pulsar run from Maven Central jars (fetched with
// Maven's dependency plugin into .services/<name>/lib), Redis and PostgreSQL from Debian's
// packages (apt-get installs them when missing). Every service keeps its config, data and
// log under .services/<name>/ (git-ignored) and runs detached, so it outlives the command
// that started it; a second `up` finds it serving and reuses it.
//
// CLI: scripts/services up|down|status|logs [name...]     (cli.ts)
// API: ensureServices(names), stopServices(names), serviceStatus(names)   (this file)
//
// One file per job: process.ts (processes, pids, ports), install.ts (apt-get, Maven),
// service.ts (the Service interface and the paths), one file per service.

import { mkdirSync } from 'node:fs';
import { kafkaService } from './kafka.ts';
import { postgresService } from './postgres.ts';
import { cmdline, listenerPid, pidAlive, portListening, say, sleep, tailFile, treeRssBytes, withTimeout } from './process.ts';
import { pulsarService } from './pulsar.ts';
import { redisService } from './redis.ts';
import { redisClusterService } from './redis-cluster.ts';
import { SERVICE_NAMES, SERVICES_DIR, type Service, type ServiceName } from './service.ts';

export { type AptGetOptions, APT_LOCK_WAIT_SECONDS, aptGet } from './install.ts';
export { KAFKA_VERSION, type PrivateKafka, type PrivateKafkaOptions, startPrivateKafka } from './kafka.ts';
export { listenerPid, tailFile, treeRssBytes } from './process.ts';
export { type PrivatePulsar, type PrivatePulsarOptions, PULSAR_VERSION, startPrivatePulsar } from './pulsar.ts';
export { REDIS_CLUSTER_PORTS } from './redis-cluster.ts';
export { REPO_ROOT, SERVICE_NAMES, SERVICES_DIR, type Service, type ServiceName } from './service.ts';

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
