// Redis Cluster: three masters (no replicas) from the same Debian redis-server, on 7001-7003
// (cluster bus on 17001-17003).

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { aptInstall } from './install.ts';
import { readPidFile, run, say, sleep, spawnDetached, stopPid, tailText, which } from './process.ts';
import { SERVICES_DIR, type Service } from './service.ts';

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

export function redisClusterService(): Service {
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
