// Transactions through the transaction coordinators: TC_CLIENT_CONNECT to each coordinator
// (a partition of pulsar/system/transaction_coordinator_assign, served by some broker), then
// NEW_TXN, ADD_PARTITION_TO_TXN, ADD_SUBSCRIPTION_TO_TXN and END_TXN on the coordinator's
// connection. Modelled on pulsar-client-go's transaction_coordinator_client.go. A message sent
// with `txn` (Producer.send) carries the id in both CommandSend and its metadata: with it only
// in the command, aborted messages stayed visible (research/pulsar.md).

import { create, isFieldSet } from '@bufbuild/protobuf';
import type { Connection, ConnectionSource } from './connection.ts';
import { PulsarClientError, PulsarServerError } from './errors.ts';
import { command } from './frame.ts';
import {
  BaseCommand_Type as T,
  CommandAddPartitionToTxnResponseSchema,
  CommandAddSubscriptionToTxnResponseSchema,
  CommandEndTxnResponseSchema,
  CommandTcClientConnectResponseSchema,
  CommandAddPartitionToTxnSchema,
  CommandAddSubscriptionToTxnSchema,
  CommandEndTxnSchema,
  CommandNewTxnResponseSchema,
  CommandNewTxnSchema,
  CommandTcClientConnectRequestSchema,
  type ServerError,
  SubscriptionSchema,
  TxnAction,
} from './proto/PulsarApi_pb.ts';

/** A transaction id as the coordinator hands it out. */
export interface TxnId {
  readonly mostBits: bigint;
  readonly leastBits: bigint;
}

export const TC_ASSIGN_TOPIC = 'persistent://pulsar/system/transaction_coordinator_assign';

interface ErrorAnswer {
  error: ServerError;
  message: string;
}

/** What the coordinators need of the client: partition counts and broker connections. */
export interface CoordinatorSource extends ConnectionSource {
  partitions(topic: string): Promise<number>;
}

export class TransactionCoordinators {
  private readonly client: CoordinatorSource;
  private coordinators: Promise<Connection[]> | undefined;
  private next = 0;

  constructor(client: CoordinatorSource) {
    this.client = client;
  }

  /** Starts a transaction that the coordinator aborts after `timeoutMs` unless it ends first. */
  async begin(timeoutMs = 60_000): Promise<TxnId> {
    const conns = await this.connect();
    const tcId = this.next++ % conns.length;
    const conn = conns[tcId]!;
    const requestId = conn.newRequestId();
    // txn_ttl_seconds is read as milliseconds by 4.0 (TransactionMetaStoreHandler.java:238).
    const body = create(CommandNewTxnSchema, { requestId, txnTtlSeconds: BigInt(timeoutMs), tcId: BigInt(tcId) });
    const answer = (await conn.request(command(T.NEW_TXN, 'newTxn', body), requestId, 'new transaction')).newTxnResponse!;
    this.check('new transaction', answer, isFieldSet(answer, CommandNewTxnResponseSchema.field.error));
    return { mostBits: answer.txnidMostBits, leastBits: answer.txnidLeastBits };
  }

  /** Registers the topics (partitions) a transaction will send to, before the sends. */
  async addPartitions(txn: TxnId, partitions: readonly string[]): Promise<void> {
    const conn = await this.coordinatorOf(txn);
    const requestId = conn.newRequestId();
    const body = create(CommandAddPartitionToTxnSchema, { requestId, ...bits(txn), partitions: [...partitions] });
    const answer = (
      await conn.request(command(T.ADD_PARTITION_TO_TXN, 'addPartitionToTxn', body), requestId, 'add partitions to transaction')
    ).addPartitionToTxnResponse!;
    this.check('add partitions to transaction', answer, isFieldSet(answer, CommandAddPartitionToTxnResponseSchema.field.error));
  }

  /** Registers subscriptions whose acks belong to the transaction. */
  async addSubscriptions(txn: TxnId, subscriptions: readonly { topic: string; subscription: string }[]): Promise<void> {
    const conn = await this.coordinatorOf(txn);
    const requestId = conn.newRequestId();
    const body = create(CommandAddSubscriptionToTxnSchema, {
      requestId,
      ...bits(txn),
      subscription: subscriptions.map((s) => create(SubscriptionSchema, s)),
    });
    const answer = (
      await conn.request(command(T.ADD_SUBSCRIPTION_TO_TXN, 'addSubscriptionToTxn', body), requestId, 'add subscriptions to transaction')
    ).addSubscriptionToTxnResponse!;
    this.check('add subscriptions to transaction', answer, isFieldSet(answer, CommandAddSubscriptionToTxnResponseSchema.field.error));
  }

  commit(txn: TxnId): Promise<void> {
    return this.end(txn, TxnAction.COMMIT);
  }

  abort(txn: TxnId): Promise<void> {
    return this.end(txn, TxnAction.ABORT);
  }

  private async end(txn: TxnId, txnAction: TxnAction): Promise<void> {
    const conn = await this.coordinatorOf(txn);
    const requestId = conn.newRequestId();
    const body = create(CommandEndTxnSchema, { requestId, ...bits(txn), txnAction });
    const what = txnAction === TxnAction.COMMIT ? 'commit transaction' : 'abort transaction';
    const answer = (await conn.request(command(T.END_TXN, 'endTxn', body), requestId, what)).endTxnResponse!;
    this.check(what, answer, isFieldSet(answer, CommandEndTxnResponseSchema.field.error));
  }

  /** The coordinator of a transaction is the one whose id is its most significant bits. */
  private async coordinatorOf(txn: TxnId): Promise<Connection> {
    const conns = await this.connect();
    const conn = conns[Number(txn.mostBits)];
    if (conn === undefined) throw new PulsarClientError(`transaction ${txn.mostBits}:${txn.leastBits} names no known coordinator`);
    return conn;
  }

  private async connect(): Promise<Connection[]> {
    // A broker closes a whole connection when a producer on it was fenced (its next send), and
    // the coordinators may share it: connect again rather than keep a closed one.
    const current = this.coordinators;
    if (current !== undefined) {
      const conns = await current.catch(() => undefined);
      if (conns?.every((c) => !c.closed)) return conns;
      if (this.coordinators === current) this.coordinators = undefined;
    }
    this.coordinators ??= this.connectAll().catch((e: unknown) => {
      this.coordinators = undefined;
      throw e;
    });
    return this.coordinators;
  }

  private async connectAll(): Promise<Connection[]> {
    const partitions = await this.client.partitions(TC_ASSIGN_TOPIC);
    if (partitions === 0) throw new PulsarClientError('the cluster has no transaction coordinators (transactionCoordinatorEnabled=false?)');
    return Promise.all(
      Array.from({ length: partitions }, async (_, tcId) => {
        const conn = await this.client.connectionFor(`${TC_ASSIGN_TOPIC}-partition-${tcId}`);
        const requestId = conn.newRequestId();
        const body = create(CommandTcClientConnectRequestSchema, { requestId, tcId: BigInt(tcId) });
        const answer = (
          await conn.request(
            command(T.TC_CLIENT_CONNECT_REQUEST, 'tcClientConnectRequest', body),
            requestId,
            `connect to coordinator ${tcId}`,
          )
        ).tcClientConnectResponse!;
        this.check(`connect to coordinator ${tcId}`, answer, isFieldSet(answer, CommandTcClientConnectResponseSchema.field.error));
        return conn;
      }),
    );
  }

  private check(what: string, answer: ErrorAnswer, failed: boolean): void {
    if (failed) throw new PulsarServerError(what, answer.error, answer.message);
  }
}

function bits(txn: TxnId): { txnidMostBits: bigint; txnidLeastBits: bigint } {
  return { txnidMostBits: txn.mostBits, txnidLeastBits: txn.leastBits };
}
