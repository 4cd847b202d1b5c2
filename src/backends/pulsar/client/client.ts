// The client: a pool of broker connections (one per broker URL), topic lookup with
// redirects, partitioned-topic metadata, and the factory of producers and consumers.
// Topic names are full: persistent://tenant/namespace/topic (partitions: …-partition-N).

import { create } from '@bufbuild/protobuf';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { type Authentication, Connection, type ConnectionOptions, parseServiceUrl } from './connection.ts';
import { Consumer, type ConsumerOptions } from './consumer.ts';
import { ClosedError, PulsarClientError, PulsarServerError } from './errors.ts';
import { command } from './frame.ts';
import { Producer, type ProducerOptions } from './producer.ts';
import {
  BaseCommand_Type as T,
  CommandLookupTopicResponse_LookupType as Lookup,
  type CommandLookupTopic,
  type CommandLookupTopicResponse,
  CommandLookupTopicSchema,
  CommandPartitionedTopicMetadataResponse_LookupType as MetaLookup,
  CommandPartitionedTopicMetadataSchema,
  ServerError,
} from './proto/PulsarApi_pb.ts';

export interface PulsarClientOptions {
  /** `pulsar://host:6650` or `pulsar+ssl://host:6651`. */
  readonly serviceUrl: string;
  readonly auth?: Authentication | undefined;
  readonly tls?: ConnectionOptions['tls'];
  readonly connectTimeoutMs?: number | undefined;
  readonly operationTimeoutMs?: number | undefined;
  readonly keepAliveIntervalMs?: number | undefined;
}

export interface LookupResult {
  /** The broker that serves the topic, to connect to. */
  readonly brokerUrl: string;
  /** True when the broker asked to be reached through the service URL (a proxy). */
  readonly throughServiceUrl: boolean;
}

const TOPIC = /^(persistent|non-persistent):\/\/[^/\s]+\/[^/\s]+\/[^/\s]+$/;
const MAX_REDIRECTS = 20;

export function assertTopicName(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || !TOPIC.test(topic)) {
    throw new InvalidArgumentError(`invalid Pulsar topic ${JSON.stringify(topic)}: expected persistent://tenant/namespace/topic`);
  }
}

export class PulsarClient {
  readonly options: PulsarClientOptions;
  private readonly pool = new Map<string, Promise<Connection>>();
  private readonly resources = new Set<{ close(): Promise<void> }>();
  private nextProducerId = 1n;
  private nextConsumerId = 1n;
  private closed = false;

  constructor(options: PulsarClientOptions) {
    parseServiceUrl(options.serviceUrl);
    this.options = options;
  }

  /** The pooled connection to `url` (the service URL by default), opened on first use. */
  connection(url = this.options.serviceUrl, proxyToBrokerUrl?: string): Promise<Connection> {
    if (this.closed) return Promise.reject(new ClosedError('the Pulsar client is closed'));
    const key = proxyToBrokerUrl === undefined ? url : `${url} -> ${proxyToBrokerUrl}`;
    const existing = this.pool.get(key);
    if (existing !== undefined) return existing;
    const opening = Connection.open({
      url,
      auth: this.options.auth,
      tls: this.options.tls,
      connectTimeoutMs: this.options.connectTimeoutMs,
      operationTimeoutMs: this.options.operationTimeoutMs,
      keepAliveIntervalMs: this.options.keepAliveIntervalMs,
      proxyToBrokerUrl,
    }).then(
      (conn) => {
        conn.onClose(() => {
          if (this.pool.get(key) === opening) this.pool.delete(key);
        });
        return conn;
      },
      (e: unknown) => {
        this.pool.delete(key);
        throw e;
      },
    );
    this.pool.set(key, opening);
    return opening;
  }

  /** Which broker serves `topic` (follows the brokers' redirects). */
  async lookup(topic: string): Promise<LookupResult> {
    assertTopicName(topic);
    let conn = await this.connection();
    let authoritative = false;
    for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
      const requestId = conn.newRequestId();
      const body: CommandLookupTopic = create(CommandLookupTopicSchema, { topic, requestId, authoritative });
      const answer: CommandLookupTopicResponse = (
        await conn.request(command(T.LOOKUP, 'lookupTopic', body), requestId, `lookup of ${topic}`)
      ).lookupTopicResponse!;
      if (answer.response === Lookup.Failed) {
        throw new PulsarServerError(`lookup of ${topic}`, answer.error, answer.message);
      }
      const url = this.pickUrl(answer.brokerServiceUrl, answer.brokerServiceUrlTls);
      if (answer.response === Lookup.Connect) return { brokerUrl: url, throughServiceUrl: answer.proxyThroughServiceUrl };
      authoritative = answer.authoritative;
      conn = await this.connection(url);
    }
    throw new PulsarClientError(`lookup of ${topic}: more than ${MAX_REDIRECTS} redirects`);
  }

  /** The connection to the broker that serves `topic`. */
  async connectionFor(topic: string): Promise<Connection> {
    const found = await this.lookup(topic);
    return found.throughServiceUrl ? this.connection(this.options.serviceUrl, found.brokerUrl) : this.connection(found.brokerUrl);
  }

  /** Number of partitions of `topic`; 0 for a non-partitioned topic. */
  async partitions(topic: string): Promise<number> {
    assertTopicName(topic);
    const conn = await this.connection();
    const requestId = conn.newRequestId();
    const body = create(CommandPartitionedTopicMetadataSchema, { topic, requestId });
    const answer = (await conn.request(command(T.PARTITIONED_METADATA, 'partitionMetadata', body), requestId, `metadata of ${topic}`))
      .partitionMetadataResponse!;
    if (answer.response === MetaLookup.Failed) {
      throw new PulsarServerError(`partitioned metadata of ${topic}`, answer.error ?? ServerError.UnknownError, answer.message);
    }
    return answer.partitions;
  }

  /** The names of the partitions of `topic` (itself when it is not partitioned). */
  async partitionNames(topic: string): Promise<string[]> {
    const n = await this.partitions(topic);
    return n === 0 ? [topic] : Array.from({ length: n }, (_, i) => `${topic}-partition-${i}`);
  }

  async createProducer(options: ProducerOptions): Promise<Producer> {
    assertTopicName(options.topic);
    if (this.closed) throw new ClosedError('the Pulsar client is closed');
    const producer = new Producer(this, this.nextProducerId++, options, () => this.resources.delete(producer));
    this.resources.add(producer);
    try {
      await producer.ready();
    } catch (e) {
      await producer.close().catch(() => undefined);
      throw e;
    }
    return producer;
  }

  async subscribe(options: ConsumerOptions): Promise<Consumer> {
    assertTopicName(options.topic);
    if (this.closed) throw new ClosedError('the Pulsar client is closed');
    const consumer = new Consumer(this, this.nextConsumerId++, options, () => this.resources.delete(consumer));
    this.resources.add(consumer);
    try {
      await consumer.ready();
    } catch (e) {
      await consumer.close().catch(() => undefined);
      throw e;
    }
    return consumer;
  }

  /** Closes every producer and consumer, then the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.resources].map((r) => r.close()));
    this.closed = true;
    const conns = await Promise.allSettled(this.pool.values());
    this.pool.clear();
    for (const c of conns) if (c.status === 'fulfilled') c.value.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private pickUrl(plain: string, secure: string): string {
    const wantTls = parseServiceUrl(this.options.serviceUrl).tls;
    const url = wantTls ? secure : plain;
    if (url === '') throw new PulsarClientError(`lookup answered no ${wantTls ? 'TLS ' : ''}broker URL`);
    return url;
  }
}
