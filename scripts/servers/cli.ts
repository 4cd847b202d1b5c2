// CLI of the local backends: scripts/services up|down|restart|status|logs [name...]
// (the bash wrapper scripts/services runs this file with the repo's Node).

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureServices, parseNames, SERVICE_NAMES, SERVICES_DIR, serviceLogs, serviceStatus, stopServices, tailFile } from './index.ts';

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
