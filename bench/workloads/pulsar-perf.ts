// The limit of the `pulsar` suite: what Pulsar's own `pulsar-perf produce` does, with Pulsar's
// own Java client. pulsar-perf is in org.apache.pulsar:pulsar-testclient, which the Maven
// repositories reachable here do not serve, so scripts/backends/pulsar-perf/PulsarProducePerf.java
// does its work (async sends with its default batching and pending limits) against the broker's
// own client jars (pulsar-client-original, in the lib folder `scripts/services up pulsar`
// fills). Compiled once per source and jar set under bench/.build (git-ignored), run in its own
// JVM after all rounds, on a topic of its own. Missing jars or JDK: reported as unavailable.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SERVICES_DIR } from '../../scripts/servers/service.ts';
import { type BenchConfig, benchEvent, type LimitRow, type LimitUnavailable } from '../target.ts';
import {
  createBenchNamespace,
  createPartitionedTopic,
  dropPulsarNamespace,
  newBenchNamespace,
  PULSAR_PARTITIONS,
  pulsarUrls,
} from './pulsar-common.ts';

const run = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE = join(repoRoot, 'scripts', 'backends', 'pulsar-perf', 'PulsarProducePerf.java');
const BUILD = join(repoRoot, 'bench', '.build', 'pulsar-perf');

/** Its one output line (see the Java file's header). */
const SUMMARY =
  /PulsarProducePerf: (\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), latency ms avg ([\d.]+) p50 ([\d.]+) p95 ([\d.]+) p99 ([\d.]+) p99\.9 ([\d.]+) max ([\d.]+)/;

/** The broker's jar folder, or why it cannot be used. */
export function pulsarLib(): { dir: string; version: string } | LimitUnavailable {
  const dir = join(SERVICES_DIR, 'pulsar', 'lib');
  const client = existsSync(dir) ? readdirSync(dir).find((f) => /^pulsar-client-original-\d[\w.-]*\.jar$/.test(f)) : undefined;
  if (!client) {
    return {
      unavailable: `Pulsar's Java client jars are missing (no pulsar-client-original-*.jar in ${dir}); \`scripts/services up pulsar\` installs them with the broker`,
    };
  }
  return { dir, version: /^pulsar-client-original-(.+)\.jar$/.exec(client)![1]! };
}

const failure = (error: unknown): string => {
  const e = error as { code?: unknown; stderr?: string; message?: string };
  if (e.code === 'ENOENT') return 'not on PATH';
  return `${e.message ?? String(error)}\n${(e.stderr ?? '').trim().split('\n').slice(-10).join('\n')}`;
};

/** The compiled class's folder, compiled when this source or jar set was not compiled before. */
async function compiled(lib: string, version: string, log: (line: string) => void): Promise<string | LimitUnavailable> {
  const source = readFileSync(SOURCE);
  const key = createHash('sha256').update(source).update(version).digest('hex').slice(0, 16);
  const out = join(BUILD, key);
  if (existsSync(join(out, 'PulsarProducePerf.class'))) return out;
  mkdirSync(BUILD, { recursive: true });
  const work = mkdtempSync(join(BUILD, 'tmp-'));
  log(`  compiling ${SOURCE} against ${lib} (once: cached in ${out})`);
  try {
    await run('javac', ['-nowarn', '-cp', `${lib}/*`, '-d', work, SOURCE], { timeout: 120_000 });
    writeFileSync(
      join(work, 'log4j2.properties'),
      // The client's INFO lines would go to stdout, where the summary is: warnings only, to stderr.
      [
        'status = warn',
        'appender.err.type = Console',
        'appender.err.name = err',
        'appender.err.target = SYSTEM_ERR',
        'appender.err.layout.type = PatternLayout',
        'appender.err.layout.pattern = [%d] %p %m (%c)%n',
        'rootLogger.level = warn',
        'rootLogger.appenderRef.err.ref = err',
        '',
      ].join('\n'),
    );
    renameSync(work, out);
    return out;
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    return { unavailable: `\`javac\` could not compile ${SOURCE}: ${failure(error)}` };
  }
}

/**
 * Two runs, each on a topic of its own (8 partitions, in a namespace with eventfold's policies):
 * pulsar-perf produce's defaults (batching on), and the same with batching off (one message per
 * entry, as both targets write). Unthrottled (pulsar-perf's default is --rate 100).
 */
export async function pulsarProducePerf(config: BenchConfig, log: (line: string) => void): Promise<LimitRow[] | LimitUnavailable> {
  const lib = pulsarLib();
  if ('unavailable' in lib) return lib;
  const classes = await compiled(lib.dir, lib.version, log);
  if (typeof classes !== 'string') return classes;
  // At least 100,000: the JVM warms up during the first tens of thousands.
  const records = Math.max(100_000, config.appends, config.batchCalls * 100);
  const work = mkdtempSync(join(tmpdir(), 'eventfold-bench-pulsar-perf-'));
  const payloads = join(work, 'payloads.txt');
  const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify(benchEvent(i)));
  writeFileSync(payloads, `${lines.join('\n')}\n`);
  const avgBytes = lines.reduce((sum, l) => sum + Buffer.byteLength(l), 0) / lines.length;
  const namespace = newBenchNamespace('perf');
  const runs = [
    {
      label:
        'batching on (its defaults), async sends: 1 ms batch delay, up to 1,000 messages per batch, max pending 1,000 (50,000 across partitions)',
      batching: 'on',
      topic: 'perf-batched',
    },
    {
      label: 'batching off (one message per entry as both targets write), async sends, max pending 1,000 (50,000 across partitions)',
      batching: 'off',
      topic: 'perf-unbatched',
    },
  ];
  const rows: LimitRow[] = [];
  try {
    await createBenchNamespace(namespace);
    for (const r of runs) {
      const topic = `persistent://public/${namespace}/${r.topic}`;
      await createPartitionedTopic(topic, PULSAR_PARTITIONS);
      log(`  PulsarProducePerf: ${r.label}`);
      let stdout: string;
      try {
        ({ stdout } = await run(
          'java',
          [
            `-Dlog4j2.configurationFile=${join(classes, 'log4j2.properties')}`,
            '-cp',
            `${classes}:${lib.dir}/*`,
            'PulsarProducePerf',
            pulsarUrls().serviceUrl,
            topic,
            String(records),
            payloads,
            r.batching,
          ],
          { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 },
        ));
      } catch (error) {
        return { unavailable: `\`java PulsarProducePerf\` (${r.label}) failed: ${failure(error)}` };
      }
      const m = SUMMARY.exec(stdout);
      if (!m) return { unavailable: `no summary line in PulsarProducePerf's output: ${stdout.trim().split('\n').slice(-5).join(' | ')}` };
      rows.push({
        label: r.label,
        records: Number(m[1]),
        recordsPerSec: Number(m[2]),
        avgLatencyMs: Number(m[4]),
        p50LatencyMs: Number(m[5]),
        p99LatencyMs: Number(m[7]),
        maxLatencyMs: Number(m[9]),
        summary: m[0],
        payloadBytes: avgBytes,
      });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    await dropPulsarNamespace(namespace).catch((error: unknown) =>
      log(`  clean-up of the perf namespace ${namespace} failed: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
  return rows;
}
