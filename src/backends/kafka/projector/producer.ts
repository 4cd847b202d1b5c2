// The transactional producer: claiming the transactional id on start, re-claiming our own epoch after an error.
import type { BaseOptions, Producer } from '@platformatic/kafka';
import { DriverError } from '../../../core/errors.ts';
import { initTransactionalProducer } from '../admin.ts';
import { hasApiError, KAFKA } from '../errors.ts';
import { fatal } from './failures.ts';

export type Transaction = Awaited<ReturnType<Producer['beginTransaction']>>;

/** Producer id and epoch an instance holds, to re-initialise after an error without taking the id from another instance (KIP-588). */
export interface HeldProducerId {
  readonly id: bigint;
  readonly epoch: number;
}

export interface TransactionalIdentity {
  readonly group: string;
  readonly transactionalId: string;
  readonly transactionTimeoutMs: number;
}

/**
 * Initialises the transactional id. `held` undefined: take it over from whoever holds it
 * (our killed predecessor), aborting its open transaction. `held` set: re-initialise our own
 * epoch (KIP-588); the coordinator answers PRODUCER_FENCED if another instance took it, which
 * is fatal. CONCURRENT_TRANSACTIONS (an abort still completing) is retried with a fresh client.
 */
export async function initProducer(
  client: BaseOptions,
  identity: TransactionalIdentity,
  held: HeldProducerId | undefined,
): Promise<{ producer: Producer; held: HeldProducerId }> {
  const options = {
    ...client,
    clientId: `eventfold-projector-${identity.group}`,
    transactionalId: identity.transactionalId,
    idempotent: true,
    producerId: held?.id ?? -1n,
    producerEpoch: held?.epoch ?? -1,
    timeout: identity.transactionTimeoutMs,
  };
  const producer = await initTransactionalProducer(options, Date.now() + identity.transactionTimeoutMs + 10_000, (error) => {
    if (held && hasApiError(error, 'PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH')) {
      throw fatal(
        new DriverError(
          KAFKA,
          `projector "${identity.group}": another instance took over transactional id ${identity.transactionalId}; give each live instance its own \`instance\``,
          error,
        ),
      );
    }
  });
  if (producer.producerId === undefined || producer.producerEpoch === undefined) {
    await producer.close().catch(() => undefined);
    throw new DriverError(KAFKA, 'InitProducerId returned no producer id');
  }
  return { producer, held: { id: producer.producerId, epoch: producer.producerEpoch } };
}
