// PostgreSQL 15 from Debian: our own cluster on 5432, trust on loopback.

import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { aptInstall } from './install.ts';
import { isRoot, readPidFile, run, runOrThrow, say, tailText, which } from './process.ts';
import { SERVICES_DIR, type Service } from './service.ts';

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

export function postgresService(): Service {
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
