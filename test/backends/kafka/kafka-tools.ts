// Kafka's own command-line tools, from the jars scripts/services installs (.services/kafka/lib):
// what an operator's dashboards and lag alerts see, not what eventfold says about itself.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES_DIR } from '../../../scripts/services.ts';
import { KAFKA_BROKERS } from '../../services/env.ts';

/** The folder of Kafka's jars; throws (never skips) when they are not there. */
export function kafkaLib(): string {
  const dir = join(SERVICES_DIR, 'kafka', 'lib');
  if (!existsSync(dir) || !readdirSync(dir).some((f) => /^kafka-tools-\d[\w.-]*\.jar$/.test(f))) {
    throw new Error(`Kafka's tools are missing: no kafka-tools-*.jar in ${dir}. Run \`scripts/services up kafka\` (it installs the jars).`);
  }
  return dir;
}

/** One row of `kafka-consumer-groups --describe`: a partition the group has an offset for. */
export interface GroupRow {
  readonly topic: string;
  readonly partition: number;
  /** undefined when the tool prints "-" (no committed offset). */
  readonly current: bigint | undefined;
  readonly logEnd: bigint;
  readonly lag: bigint | undefined;
}

const HEADER = ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG'];

/**
 * `kafka-consumer-groups --bootstrap-server … --describe --group <groupId>` (the Java class
 * behind the script), parsed. Its LAG is LOG-END-OFFSET (the high watermark) minus the
 * committed offset, as every Kafka lag monitor computes it.
 */
export async function describeGroup(groupId: string): Promise<GroupRow[]> {
  const lib = kafkaLib();
  const args = [
    '-cp',
    `${lib}/*`,
    'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
    '--bootstrap-server',
    KAFKA_BROKERS.join(','),
    '--describe',
    '--group',
    groupId,
  ];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('java', args, { encoding: 'utf8', timeout: 60_000 }, (error, out, err) => {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT')
        reject(
          new Error("java is not on the PATH: Kafka's ConsumerGroupCommand cannot run (scripts/services installs Java 17 with Kafka)"),
        );
      else if (error) reject(new Error(`ConsumerGroupCommand failed (${error.message}):\n${out}\n${err}`));
      else resolve(out);
    });
  });
  const lines = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const at = lines.findIndex((l) => l.startsWith('GROUP '));
  if (at < 0) throw new Error(`ConsumerGroupCommand printed no table for ${groupId}:\n${stdout}`);
  const header = lines[at]!.split(/\s+/);
  if (HEADER.some((h, i) => header[i] !== h)) throw new Error(`unexpected ConsumerGroupCommand header: ${lines[at]}`);
  const num = (v: string | undefined): bigint | undefined => (v === undefined || v === '-' ? undefined : BigInt(v));
  return lines.slice(at + 1).map((line) => {
    const [group, topic, partition, current, logEnd, lag] = line.split(/\s+/);
    if (group !== groupId || topic === undefined || partition === undefined || logEnd === undefined)
      throw new Error(`unexpected ConsumerGroupCommand row: ${line}`);
    return { topic, partition: Number(partition), current: num(current), logEnd: num(logEnd)!, lag: num(lag) };
  });
}
