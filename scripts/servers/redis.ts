// Redis 7 from Debian: a single node on 6379.

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { aptInstall } from './install.ts';
import { readPidFile, spawnDetached, stopPid, which } from './process.ts';
import { SERVICES_DIR, type Service } from './service.ts';

export function redisService(): Service {
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
