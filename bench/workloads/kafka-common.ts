// What both Kafka targets share: the brokers, a preflight that fails loudly, the topic prefix of
// a target's round (unique, kept in the target's bench directory so the memory probe's child process finds
// the same topics) and the clean-up of every topic and consumer group under it. Also Kafka's own
// producer perf tool (`kafka-producer-perf-test`, from the kafka-tools jar), run as the limit of
// this machine.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Admin, type BaseOptions } from '@platformatic/kafka';
import type { BenchConfig } from '../target.ts';
import { benchEvent, type LimitRow } from '../target.ts';

/** `--kafka-brokers` sets it (comma-separated host:port); child processes inherit it. */
export const kafkaBrokers = (): string[] =>
  (process.env.EVENTFOLD_KAFKA_BROKERS ?? '127.0.0.1:9092')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');

export const PARTITIONS = 8;

/** Client options that give up instead of retrying for long: the bench must fail, not hang. */
export const clientBase = (clientId: string): BaseOptions => ({
  clientId,
  bootstrapBrokers: kafkaBrokers(),
  connectTimeout: 3000,
  retries: 3,
});

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(clientBase('eventfold-bench-admin'));
  try {
    return await fn(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

export async function preflightKafka(): Promise<void> {
  const brokers = kafkaBrokers().join(',');
  try {
    await withAdmin(async (admin) => {
      const metadata = await admin.metadata({ topics: [] });
      if (metadata.brokers.size === 0) throw new Error('the cluster reported no brokers');
    });
  } catch (error) {
    const why = error instanceof Error ? error.message || error.name : String(error);
    throw new Error(
      `kafka suite: cannot use Kafka at ${brokers} (${why}). Start the local one with \`scripts/services up kafka\`, ` +
        'or point `--kafka-brokers` (or EVENTFOLD_KAFKA_BROKERS) at a running cluster; `--suite sqlite` runs without servers.',
    );
  }
  kafkaLib(); // the perf tool's jars must be there too
}

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

/** The folder of Kafka's jars that scripts/services installs; fails loudly when it is missing. */
export function kafkaLib(): { dir: string; version: string } {
  const dir = join(repoRoot, '.services', 'kafka', 'lib');
  const tools = existsSync(dir) ? readdirSync(dir).find((f) => /^kafka-tools-\d[\w.-]*\.jar$/.test(f)) : undefined;
  if (!tools) {
    throw new Error(
      `kafka suite: Kafka's jars are missing (no kafka-tools-*.jar in ${dir}), so its producer perf tool cannot run. ` +
        'Run `scripts/services up kafka` once: it installs them (and starts the local broker).',
    );
  }
  return { dir, version: /^kafka-tools-(.+)\.jar$/.exec(tools)![1]! };
}

/** Server side of the setup, printed under the table. */
export async function describeKafka(): Promise<string> {
  return withAdmin(async (admin) => {
    const metadata = await admin.metadata({ topics: [] });
    let version = '?';
    try {
      version = kafkaLib().version;
    } catch {
      // the preflight already said so
    }
    return (
      `Kafka ${version} (KRaft) at ${kafkaBrokers().join(',')}, ${metadata.brokers.size} broker(s), topics created with ${PARTITIONS} partitions and replication factor 1; ` +
      "acks=all on one broker is the leader's own log append: Kafka does not fsync per write (log.flush.* at its defaults), durability comes from replication, which one broker does not have. " +
      'Both targets talk to this one broker, in the same run, in interleaved rounds, each target under a topic prefix of its own every round'
    );
  });
}

/**
 * The topic prefix of the store kept in `dir`: made up on first use (unique per run, round and target),
 * then read back, so reopening the same dir sees the same topics.
 */
export function prefixFor(dir: string, kind: 'ef' | 'raw'): string {
  const file = join(dir, 'kafka-prefix');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const prefix = `efbench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-${kind}`;
  writeFileSync(file, `${prefix}\n`);
  return prefix;
}

/** Deletes every topic and consumer group named `<prefix>.…`; returns how many. */
export async function deletePrefix(dir: string): Promise<{ topics: number; groups: number }> {
  const file = join(dir, 'kafka-prefix');
  if (!existsSync(file)) return { topics: 0, groups: 0 };
  const prefix = readFileSync(file, 'utf8').trim();
  if (!/^efbench-[a-z0-9]+-[0-9a-f]{6}-(ef|raw)$/.test(prefix))
    throw new Error(`refusing to delete topics of unexpected prefix ${JSON.stringify(prefix)}`);
  return deleteNamed(prefix);
}

export async function deleteNamed(prefix: string): Promise<{ topics: number; groups: number }> {
  return withAdmin(async (admin) => {
    const mine = (name: string): boolean => name.startsWith(`${prefix}.`);
    const groups = [...(await admin.listGroups()).keys()].filter(mine);
    if (groups.length > 0) await admin.deleteGroups({ groups });
    const topics = (await admin.listTopics()).filter(mine);
    if (topics.length > 0) await admin.deleteTopics({ topics });
    return { topics: topics.length, groups: groups.length };
  });
}

/** The summary line of ProducerPerformance. */
const SUMMARY =
  /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th/;

/**
 * Kafka's own `kafka-producer-perf-test` (org.apache.kafka.tools.ProducerPerformance from the
 * kafka-tools jar) on a topic of its own: the same payload bytes as the bench's events, the same
 * partition count, no throttling, acks=all. Its producer pipelines (many sends in flight,
 * batching by linger/batch.size): it is the machine's limit for producing these records, not a
 * per-append figure.
 */
export async function producerPerfTest(config: BenchConfig, log: (line: string) => void): Promise<LimitRow[]> {
  const { dir: lib } = kafkaLib();
  const prefix = `efbench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-perf`;
  const topic = `${prefix}.events`;
  // At least 50,000: the tool's JVM needs a few thousand records to warm up.
  const records = Math.max(50_000, config.appends, config.batchCalls * 100);
  const work = mkdtempSync(join(tmpdir(), 'eventfold-bench-perf-'));
  const payloads = join(work, 'payloads.txt');
  // The bench's own payloads, one per line (the tool picks one at random per record).
  writeFileSync(payloads, `${Array.from({ length: 1000 }, (_, i) => JSON.stringify(benchEvent(i))).join('\n')}\n`);
  const avgBytes =
    Array.from({ length: 1000 }, (_, i) => Buffer.byteLength(JSON.stringify(benchEvent(i)))).reduce((a, b) => a + b, 0) / 1000;
  const bootstrap = kafkaBrokers().join(',');
  const runs: { label: string; extra: string[] }[] = [
    { label: 'idempotent, acks=all, pipelined (its defaults: linger.ms=5, batch.size=16384, 5 in flight)', extra: [] },
    {
      label: 'transactional, acks=all, pipelined, a commit every 100 ms (--transaction-duration-ms 100)',
      extra: ['--transaction-duration-ms', '100'],
    },
  ];
  const rows: LimitRow[] = [];
  try {
    await withAdmin((admin) => admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 }));
    for (const run of runs) {
      const args = [
        '-cp',
        `${lib}/*`,
        'org.apache.kafka.tools.ProducerPerformance',
        '--topic',
        topic,
        '--num-records',
        String(records),
        '--payload-file',
        payloads,
        '--throughput',
        '-1',
        ...run.extra,
        '--producer-props',
        `bootstrap.servers=${bootstrap}`,
        'acks=all',
        'enable.idempotence=true',
      ];
      if (run.extra.length > 0) args.push(`transactional.id=${prefix}.perf-tx`);
      log(`  kafka-producer-perf-test: ${run.label}`);
      let stdout: string;
      try {
        ({ stdout } = await promisify(execFile)('java', args, { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 }));
      } catch (error) {
        const e = error as { code?: unknown; stderr?: string; message?: string };
        if (e.code === 'ENOENT')
          throw new Error(
            "kafka suite: `java` is not on PATH, so Kafka's producer perf tool cannot run (scripts/services runs Kafka with the same java)",
          );
        throw new Error(
          `kafka suite: kafka-producer-perf-test failed: ${e.message ?? String(error)}\n${(e.stderr ?? '').split('\n').slice(-15).join('\n')}`,
        );
      }
      const lines = stdout.trim().split('\n');
      const summary = [...lines]
        .reverse()
        .map((l) => SUMMARY.exec(l))
        .find((m) => m !== null);
      if (!summary) throw new Error(`kafka suite: no summary line in kafka-producer-perf-test's output:\n${lines.slice(-5).join('\n')}`);
      rows.push({
        label: run.label,
        records: Number(summary[1]),
        recordsPerSec: Number(summary[2]),
        avgLatencyMs: Number(summary[4]),
        p50LatencyMs: Number(summary[6]),
        p99LatencyMs: Number(summary[8]),
        maxLatencyMs: Number(summary[5]),
        summary: summary[0],
      });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    await deleteNamed(prefix).catch((error: unknown) =>
      log(`  clean-up of the perf tool's topic failed: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
  return rows.map((row) => ({ ...row, payloadBytes: avgBytes }));
}
