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
 * Answers to InitProducerId that pass: the coordinator is completing an earlier transaction
 * or claim of the id, or is loading or moving its transaction log partition. PRODUCER_FENCED
 * too: a claim of an id with a transaction open first aborts it, and when another claim bumps
 * the epoch meanwhile that abort fails as fenced and the coordinator answers our InitProducerId
 * with it (TransactionCoordinator.handleInitProducerId); seen with 4 routed writers borrowing
 * partitions. A claim that asks for no particular epoch (producer id -1) cannot itself be
 * fenced; a caller that does ask (the projector) refuses a real fence in `onError`.
 */
const CLAIM_CONTENTION = [
  'CONCURRENT_TRANSACTIONS',
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_EPOCH',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
];

/**
 * InitProducerId on a transactional id (run by the first `beginTransaction`): bumps its epoch,
 * fencing every earlier holder and completing whatever transaction it had open. While the
 * coordinator is still completing an earlier transaction or another claim it answers one of
 * CLAIM_CONTENTION; when writers keep taking an id from each other that can outlast the
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
      if (!hasApiError(error, ...CLAIM_CONTENTION) || Date.now() > deadline) throw error;
      await sleep(Math.random() * Math.min(200, 10 * 2 ** attempt));
    }
  }
}
