// One TCP (or TLS) connection to a Pulsar broker: the CONNECT handshake with optional auth,
// request/response matching by request_id, keep-alive PING/PONG, and dispatch of broker-sent
// commands to the producer or consumer registered under their id. Modelled on
// pulsar-client-go's internal/connection.go; producers and consumers multiplex on it.

import net from 'node:net';
import tls from 'node:tls';
import { create } from '@bufbuild/protobuf';
import { ConnectionClosedError, PulsarClientError, PulsarServerError, PulsarTimeoutError } from './errors.ts';
import {
  command,
  commandBody,
  DEFAULT_MAX_MESSAGE_SIZE,
  decodeFrame,
  encodeCommand,
  encodePayloadCommand,
  FRAME_OVERHEAD,
  type Frame,
  FrameReader,
} from './frame.ts';
import {
  AuthDataSchema,
  type BaseCommand,
  BaseCommand_Type as T,
  CommandAuthResponseSchema,
  CommandConnectSchema,
  CommandPingSchema,
  CommandPongSchema,
  FeatureFlagsSchema,
  type MessageMetadata,
  ProtocolVersion,
} from './proto/PulsarApi_pb.ts';

export const CLIENT_VERSION = 'eventfold-pulsar-client';

/** Credentials for CONNECT (and for the broker's AUTH_CHALLENGE when they expire). */
export interface Authentication {
  readonly method: string;
  data(): Uint8Array | Promise<Uint8Array>;
}

/** Token (JWT) authentication; a function is called again on each connect and challenge. */
export function tokenAuth(token: string | (() => string | Promise<string>)): Authentication {
  return {
    method: 'token',
    async data() {
      return Buffer.from(typeof token === 'function' ? await token() : token, 'utf8');
    },
  };
}

export interface ConnectionOptions {
  /** `pulsar://host:port` or `pulsar+ssl://host:port`. */
  readonly url: string;
  readonly auth?: Authentication | undefined;
  /** Extra options for TLS connections (CA, client certificate, servername). */
  readonly tls?: tls.ConnectionOptions | undefined;
  /** Default 10 s. */
  readonly connectTimeoutMs?: number | undefined;
  /** Timeout of each request (lookup, producer, subscribe, seek…). Default 30 s. */
  readonly operationTimeoutMs?: number | undefined;
  /** PING this often; close after twice it without any data. Default 30 s. */
  readonly keepAliveIntervalMs?: number | undefined;
  /** Through a Pulsar proxy: the broker it should forward to. */
  readonly proxyToBrokerUrl?: string | undefined;
}

/** Where producers and consumers get the connection to a topic's broker (the client). */
export interface ConnectionSource {
  connectionFor(topic: string): Promise<Connection>;
}

/** What a producer or consumer gets from its connection. */
export interface ConnectionListener {
  /** A command addressed to this producer or consumer id (SEND_RECEIPT, MESSAGE, CLOSE_*…). */
  handle(frame: Frame): void;
  /** The connection is gone; the listener is already unregistered. */
  connectionClosed(error: Error): void;
}

interface Pending {
  readonly what: string;
  resolve(cmd: BaseCommand): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
  /** Called with an interim answer (PRODUCER_SUCCESS with producer_ready=false); keeps waiting. */
  readonly interim: ((cmd: BaseCommand) => void) | undefined;
}

export interface RequestOptions {
  /** Default: the connection's operation timeout. 0: no timeout. */
  readonly timeoutMs?: number;
  readonly interim?: (cmd: BaseCommand) => void;
}

export function parseServiceUrl(url: string): { host: string; port: number; tls: boolean } {
  const m = /^(pulsar|pulsar\+ssl):\/\/([^/:]+|\[[^\]]+\]):(\d+)\/?$/.exec(url);
  if (m === null)
    throw new PulsarClientError(`invalid Pulsar service URL ${JSON.stringify(url)}: expected pulsar://host:port or pulsar+ssl://host:port`);
  return { host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]), tls: m[1] === 'pulsar+ssl' };
}

export class Connection {
  readonly url: string;
  /** Largest message the broker takes (CONNECTED.max_message_size). */
  maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  serverVersion = '';
  private readonly socket: net.Socket;
  private readonly reader = new FrameReader();
  private readonly pending = new Map<bigint, Pending>();
  private readonly producers = new Map<bigint, ConnectionListener>();
  private readonly consumers = new Map<bigint, ConnectionListener>();
  private readonly closeListeners = new Set<(error: Error) => void>();
  private nextRequestId = 1n;
  private closedWith: Error | undefined;
  private lastReceived = Date.now();
  private keepAlive: NodeJS.Timeout | undefined;
  private handshake: { resolve(): void; reject(e: Error): void } | undefined;
  private readonly options: ConnectionOptions;

  private constructor(socket: net.Socket, options: ConnectionOptions) {
    this.socket = socket;
    this.options = options;
    this.url = options.url;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.destroy(new ConnectionClosedError(`connection to ${this.url} failed: ${e.message}`, e)));
    socket.on('close', () => this.destroy(new ConnectionClosedError(`connection to ${this.url} closed`)));
  }

  /** Connects and completes the CONNECT handshake. */
  static async open(options: ConnectionOptions): Promise<Connection> {
    const { host, port, tls: useTls } = parseServiceUrl(options.url);
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const socket = useTls
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...options.tls })
      : net.connect({ host, port });
    socket.setNoDelay(true);
    const conn = new Connection(socket, options);
    const timer = setTimeout(() => conn.destroy(new PulsarTimeoutError(`connect to ${options.url} took over ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        conn.handshake = { resolve, reject };
        socket.once(useTls ? 'secureConnect' : 'connect', () => {
          conn.sendConnect().catch((e: unknown) => conn.destroy(e instanceof Error ? e : new Error(String(e))));
        });
      });
    } finally {
      clearTimeout(timer);
    }
    conn.startKeepAlive();
    return conn;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  newRequestId(): bigint {
    return this.nextRequestId++;
  }

  /** Sends a command that carries `requestId` and waits for the answer with the same id. */
  request(cmd: BaseCommand, requestId: bigint, what: string, options: RequestOptions = {}): Promise<BaseCommand> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    return new Promise<BaseCommand>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.options.operationTimeoutMs ?? 30_000;
      const entry: Pending = { what, resolve, reject, timer: undefined, interim: options.interim };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.pending.delete(requestId);
          reject(new PulsarTimeoutError(`${what}: no answer from ${this.url} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(requestId, entry);
      this.write(encodeCommand(cmd));
    });
  }

  /** Sends a command that has no answer of its own (FLOW, ACK, REDELIVER…). */
  send(cmd: BaseCommand): void {
    if (this.closedWith !== undefined) throw this.closedWith;
    this.write(encodeCommand(cmd));
  }

  sendPayload(cmd: BaseCommand, metadata: MessageMetadata, payload: Uint8Array): void {
    this.sendFrame(encodePayloadCommand(cmd, metadata, payload));
  }

  /** Sends an encoded frame (a producer keeps its SEND frames to resend after a reconnect). */
  sendFrame(frame: Buffer): void {
    if (this.closedWith !== undefined) throw this.closedWith;
    this.write(frame);
  }

  registerProducer(id: bigint, listener: ConnectionListener): void {
    this.producers.set(id, listener);
  }
  registerConsumer(id: bigint, listener: ConnectionListener): void {
    this.consumers.set(id, listener);
  }
  /** Whether the producer is still registered here: false once the connection closed or the broker closed it. */
  hasProducer(id: bigint): boolean {
    return this.producers.has(id);
  }
  hasConsumer(id: bigint): boolean {
    return this.consumers.has(id);
  }
  unregisterProducer(id: bigint): void {
    this.producers.delete(id);
  }
  unregisterConsumer(id: bigint): void {
    this.consumers.delete(id);
  }

  onClose(listener: (error: Error) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    this.destroy(new ConnectionClosedError(`connection to ${this.url} was closed by the client`));
  }

  private write(frame: Buffer): void {
    this.socket.write(frame);
  }

  private async sendConnect(): Promise<void> {
    const auth = this.options.auth;
    const connect = create(CommandConnectSchema, {
      clientVersion: CLIENT_VERSION,
      protocolVersion: ProtocolVersion.v20,
      featureFlags: create(FeatureFlagsSchema, { supportsAuthRefresh: true, supportsBrokerEntryMetadata: true }),
      ...(auth === undefined ? {} : { authMethodName: auth.method, authData: await auth.data() }),
      ...(this.options.proxyToBrokerUrl === undefined ? {} : { proxyToBrokerUrl: this.options.proxyToBrokerUrl }),
    });
    this.write(encodeCommand(command(T.CONNECT, 'connect', connect)));
  }

  private startKeepAlive(): void {
    const interval = this.options.keepAliveIntervalMs ?? 30_000;
    this.keepAlive = setInterval(() => {
      const silent = Date.now() - this.lastReceived;
      if (silent >= 2 * interval) {
        this.destroy(new ConnectionClosedError(`connection to ${this.url}: no answer to PING for ${silent} ms`));
      } else {
        // Every tick, as pulsar-client-go does: a PONG within the next interval keeps it open.
        this.write(encodeCommand(command(T.PING, 'ping', create(CommandPingSchema))));
      }
    }, interval);
    this.keepAlive.unref();
  }

  private onData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      this.destroy(e as Error);
      return;
    }
    for (const raw of frames) {
      let frame: Frame;
      try {
        frame = decodeFrame(raw);
      } catch (e) {
        this.destroy(new PulsarClientError(`connection to ${this.url}: undecodable frame: ${(e as Error).message}`, e));
        return;
      }
      this.dispatch(frame);
    }
  }

  private dispatch(frame: Frame): void {
    const cmd = frame.command;
    switch (cmd.type) {
      case T.CONNECTED: {
        const c = cmd.connected!;
        this.serverVersion = c.serverVersion;
        if (c.maxMessageSize > 0) this.maxMessageSize = c.maxMessageSize;
        this.reader.maxFrameSize = this.maxMessageSize + FRAME_OVERHEAD;
        this.handshake?.resolve();
        this.handshake = undefined;
        return;
      }
      case T.PING:
        this.write(encodeCommand(command(T.PONG, 'pong', create(CommandPongSchema))));
        return;
      case T.PONG:
        return;
      case T.AUTH_CHALLENGE:
        void this.answerChallenge();
        return;
      case T.SEND_RECEIPT:
        this.toProducer(cmd.sendReceipt!.producerId, frame);
        return;
      case T.SEND_ERROR:
        this.toProducer(cmd.sendError!.producerId, frame);
        return;
      case T.CLOSE_PRODUCER:
        this.toProducer(cmd.closeProducer!.producerId, frame);
        return;
      case T.MESSAGE:
        this.toConsumer(cmd.message!.consumerId, frame);
        return;
      case T.CLOSE_CONSUMER:
        this.toConsumer(cmd.closeConsumer!.consumerId, frame);
        return;
      case T.ACTIVE_CONSUMER_CHANGE:
        this.toConsumer(cmd.activeConsumerChange!.consumerId, frame);
        return;
      case T.REACHED_END_OF_TOPIC:
        this.toConsumer(cmd.reachedEndOfTopic!.consumerId, frame);
        return;
      case T.ERROR:
        if (this.handshake !== undefined) {
          // An error before CONNECTED is the handshake's (bad credentials, say).
          const e = cmd.error!;
          this.destroy(new PulsarServerError(`connect to ${this.url}`, e.error, e.message));
          return;
        }
        break;
    }
    const requestId = commandBody(cmd)?.requestId;
    const entry = requestId === undefined ? undefined : this.pending.get(requestId);
    if (entry === undefined || requestId === undefined) return; // late answer of a timed-out request
    if (cmd.type === T.PRODUCER_SUCCESS && cmd.producerSuccess?.producerReady === false && entry.interim !== undefined) {
      // WaitForExclusive: the broker answers again once the producer got the topic.
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.timer = undefined;
      entry.interim(cmd);
      return;
    }
    this.pending.delete(requestId);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    if (cmd.type === T.ERROR) entry.reject(new PulsarServerError(entry.what, cmd.error!.error, cmd.error!.message));
    else entry.resolve(cmd);
  }

  private toProducer(id: bigint, frame: Frame): void {
    this.producers.get(id)?.handle(frame);
  }
  private toConsumer(id: bigint, frame: Frame): void {
    this.consumers.get(id)?.handle(frame);
  }

  private async answerChallenge(): Promise<void> {
    const auth = this.options.auth;
    if (auth === undefined) return;
    try {
      const response = create(CommandAuthResponseSchema, {
        clientVersion: CLIENT_VERSION,
        protocolVersion: ProtocolVersion.v20,
        response: create(AuthDataSchema, { authMethodName: auth.method, authData: await auth.data() }),
      });
      if (!this.closed) this.write(encodeCommand(command(T.AUTH_RESPONSE, 'authResponse', response)));
    } catch (e) {
      this.destroy(new PulsarClientError(`connection to ${this.url}: refreshing credentials failed`, e));
    }
  }

  private destroy(error: Error): void {
    if (this.closedWith !== undefined) return;
    this.closedWith =
      error instanceof ConnectionClosedError || error instanceof PulsarServerError
        ? error
        : new ConnectionClosedError(error.message, error);
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.socket.destroy();
    this.handshake?.reject(this.closedWith);
    this.handshake = undefined;
    for (const entry of this.pending.values()) {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.reject(this.closedWith);
    }
    this.pending.clear();
    const listeners = [...this.producers.values(), ...this.consumers.values()];
    this.producers.clear();
    this.consumers.clear();
    for (const l of listeners) l.connectionClosed(this.closedWith);
    for (const l of this.closeListeners) l(this.closedWith);
  }
}
