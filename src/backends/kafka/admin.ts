import { type Admin, Producer, type ProducerOptions } from '@platformatic/kafka';
import { sleep } from '../../core/sleep.ts';
import { hasApiError } from './errors.ts';
import { PartitionLog } from './log.ts';

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly replicas: number;
  readonly configs: Readonly<Record<string, string>>;
}

/**
 * Creates a topic unless it exists (another process of the same store may create it at the same
 * moment: TOPIC_ALREADY_EXISTS counts as done), then waits until every partition has a leader,
 * because creation is asynchronous and a produce or fetch before that fails.
 */
export async function ensureTopic(admin: Admin, spec: TopicSpec, existing?: ReadonlySet<string>): Promise<void> {
  const known = existing ?? new Set(await admin.listTopics());
  if (!known.has(spec.topic)) {
    await admin
      .createTopics({
        topics: [spec.topic],
        partitions: spec.partitions,
        replicas: spec.replicas,
        configs: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
      })
      .catch((error: unknown) => {
        if (!hasApiError(error, 'TOPIC_ALREADY_EXISTS')) throw error;
      });
  }
  await new PartitionLog(admin).describe(spec.topic, spec.partitions);
}

/** Topic configuration of a log that is the source of truth: never deleted, never compacted. */
export const KEEP_FOREVER: Readonly<Record<string, string>> = {
  'cleanup.policy': 'delete',
  'retention.ms': '-1',
  'retention.bytes': '-1',
};

/**
 * InitProducerId on a transactional id (run by the first `beginTransaction`): bumps its epoch,
 * fencing every earlier holder and completing whatever transaction it had open. While the
 * coordinator is still completing an earlier transaction or another claim it answers
 * CONCURRENT_TRANSACTIONS; when writers keep taking an id from each other that can outlast the
 * client's retries, so keep trying, with a fresh producer each time (a failed init leaves the
 * client's transaction state behind), until `deadline`. Other errors go to `onError` first,
 * which may throw a more precise one.
 */
export async function initTransactionalProducer(
  options: ProducerOptions<Buffer, Buffer, Buffer, Buffer>,
  deadline: number,
  onError?: (error: unknown) => void,
): Promise<Producer> {
  for (let attempt = 0; ; attempt++) {
    const producer = new Producer(options);
    try {
      await (await producer.beginTransaction()).cancel();
      return producer;
    } catch (error) {
      await producer.close().catch(() => undefined);
      onError?.(error);
      if (!hasApiError(error, 'CONCURRENT_TRANSACTIONS') || Date.now() > deadline) throw error;
      await sleep(Math.random() * Math.min(200, 10 * 2 ** attempt));
    }
  }
}
