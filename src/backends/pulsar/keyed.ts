import type { Position, StoredSnapshot } from '../../core/driver.ts';
import { DriverError } from '../../core/errors.ts';
import { CompactedView } from '../log/compacted-view.ts';
import type { PulsarClient } from './client/client.ts';
import type { Message } from './client/consumer.ts';
import { PULSAR as NAME } from './client/errors.ts';
import type { Producer } from './client/producer.ts';
import type { PulsarLog } from './log.ts';

/**
 * A keyed topic read as a table (snapshots and subscription checkpoints share one, `<prefix>-state`): every write is a
 * message keyed by what it is the value of; a read catches a view up to the topic's last
 * message and takes the newest value of the key (last write wins, in log order, across
 * processes). A process reads the topic once, then only its tail. The broker compacts the
 * topic (a threshold set on open), and reads are compacted: a cold read gets the newest message
 * per key up to the last compaction, then the writes since. A deletion is a message with the
 * `ef-deleted` property, so compaction keeps it as the key's newest value.
 */
export class KeyedTopic {
  readonly #topic: string;
  readonly #client: PulsarClient;
  readonly #view: CompactedView<Message, Message>;
  #producer: Promise<Producer> | undefined;

  constructor(topic: string, client: PulsarClient, log: PulsarLog) {
    this.#topic = topic;
    this.#client = client;
    // Compacted by the broker (its threshold is set on open): a cold read gets the newest value per key, then the tail.
    log.readCompacted(topic);
    this.#view = new CompactedView<Message, Message>(
      async (from) => log.page(topic, from, 1000).then((p) => ({ records: p.messages, next: p.next, end: p.end })),
      (m) => (m.key === undefined ? undefined : { key: m.key, value: m.properties['ef-deleted'] === '1' ? undefined : m }),
    );
  }

  /** The newest message of `key`, unless it was deleted since. */
  get(key: string): Promise<Message | undefined> {
    return this.#view.get(key);
  }

  async put(key: string, payload: Uint8Array, properties: Record<string, string>): Promise<void> {
    if (!this.#producer) {
      this.#producer = this.#client.createProducer({ topic: this.#topic });
      this.#producer.catch(() => {
        this.#producer = undefined;
      });
    }
    await (await this.#producer).send(payload, { key, properties });
  }

  async close(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    await (await producer?.catch(() => undefined))?.close();
  }
}

/** Snapshots: key `s/<streamId>/<name>` (stream ids cannot contain "/"), payload the state. */
export class PulsarSnapshots {
  readonly #topic: KeyedTopic;

  constructor(topic: KeyedTopic) {
    this.#topic = topic;
  }

  async read(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    const m = await this.#topic.get(`s/${streamId}/${name}`);
    if (!m) return undefined;
    const p = m.properties;
    return {
      streamId,
      name,
      schemaVersion: Number(p['ef-schema'] ?? 1),
      version: Number(p['ef-version'] ?? 0),
      position: { partition: Number(p['ef-partition'] ?? 0), offset: BigInt(p['ef-offset'] ?? '0') },
      state: m.payload,
      takenAt: Number(p['ef-taken-at'] ?? 0),
    };
  }

  write(s: StoredSnapshot): Promise<void> {
    return this.#topic.put(`s/${s.streamId}/${s.name}`, s.state, {
      'ef-schema': String(s.schemaVersion),
      'ef-version': String(s.version),
      'ef-partition': String(s.position.partition),
      'ef-offset': String(s.position.offset),
      'ef-taken-at': String(s.takenAt),
    });
  }
}

/** Checkpoints: key `c/<group>`, payload the positions as JSON `[[partition, "offset"], …]`; a delete is a marked empty message. */
export class PulsarCheckpoints {
  readonly #topic: KeyedTopic;

  constructor(topic: KeyedTopic) {
    this.#topic = topic;
  }

  async read(group: string): Promise<readonly Position[] | undefined> {
    const m = await this.#topic.get(`c/${group}`);
    if (!m) return undefined;
    try {
      const pairs = JSON.parse(Buffer.from(m.payload).toString('utf8')) as [number, string][];
      return pairs.map(([partition, offset]) => ({ partition, offset: BigInt(offset) }));
    } catch (error) {
      throw new DriverError(NAME, `checkpoint of group ${JSON.stringify(group)} is unreadable`, error);
    }
  }

  write(group: string, positions: readonly Position[]): Promise<void> {
    const json = JSON.stringify(positions.map((p) => [p.partition, String(p.offset)]));
    return this.#topic.put(`c/${group}`, Buffer.from(json, 'utf8'), {});
  }

  delete(group: string): Promise<void> {
    return this.#topic.put(`c/${group}`, Buffer.alloc(0), { 'ef-deleted': '1' });
  }
}
