import type { Position, StoredSnapshot, StreamPage, StreamSummary } from '../../core/driver.ts';
import { evalScript, fields, type RedisConnection, str } from './connection.ts';
import type { RedisKeys } from './keys.ts';

const REPLACE_HASH_SCRIPT = "redis.call('DEL', KEYS[1]) if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end return 1";

/**
 * What the Redis driver keeps besides the events: snapshots (a hash per stream and name),
 * subscription checkpoints (a hash per group, partition -> offset), and the listings the CLI
 * and tools page through (SCAN over the key patterns of keys.ts).
 */
export class RedisRecords {
  readonly #conn: () => RedisConnection;
  readonly #keys: RedisKeys;
  readonly #partitionOf: (streamId: string) => number;

  constructor(conn: () => RedisConnection, keys: RedisKeys, partitionOf: (streamId: string) => number) {
    this.#conn = conn;
    this.#keys = keys;
    this.#partitionOf = partitionOf;
  }

  async readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    const partition = this.#partitionOf(streamId);
    const key = this.#keys.snapshot(partition, streamId, name);
    const f = fields(await this.#conn().send(key, ['HGETALL', key], true));
    if (f.size === 0) return undefined;
    return {
      streamId,
      name,
      schemaVersion: Number(str(f.get('sv'))),
      version: Number(str(f.get('v'))),
      position: { partition: Number(str(f.get('p'))), offset: BigInt(str(f.get('o'))) },
      state: new Uint8Array(f.get('st')!),
      takenAt: Number(str(f.get('at'))),
    };
  }

  async writeSnapshot(s: StoredSnapshot): Promise<void> {
    const key = this.#keys.snapshot(this.#partitionOf(s.streamId), s.streamId, s.name);
    await this.#conn().send(key, [
      'HSET',
      key,
      'sv',
      String(s.schemaVersion),
      'v',
      String(s.version),
      'p',
      String(s.position.partition),
      'o',
      String(s.position.offset),
      'st',
      Buffer.from(s.state.buffer, s.state.byteOffset, s.state.byteLength),
      'at',
      String(s.takenAt),
    ]);
  }

  async readCheckpoint(group: string): Promise<readonly Position[] | undefined> {
    const key = this.#keys.group(group);
    const f = fields(await this.#conn().send(key, ['HGETALL', key], true));
    if (f.size === 0) return undefined;
    return [...f]
      .map(([partition, offset]) => ({ partition: Number(partition), offset: BigInt(offset.toString()) }))
      .sort((a, b) => a.partition - b.partition);
  }

  async writeCheckpoint(group: string, positions: readonly Position[]): Promise<void> {
    const key = this.#keys.group(group);
    // Replace the whole vector atomically (a seek may name fewer partitions than before).
    await evalScript(
      this.#conn(),
      REPLACE_HASH_SCRIPT,
      [key],
      positions.flatMap((p) => [String(p.partition), String(p.offset)]),
    );
  }

  async deleteCheckpoint(group: string): Promise<void> {
    const key = this.#keys.group(group);
    await this.#conn().send(key, ['DEL', key]);
  }

  /**
   * SCAN over the stream keys (on a cluster master by master), then each stream's last entry
   * for its version. The cursor is SCAN's; a page may be short, or hold a few more than `limit`.
   */
  async listStreams(
    page: { cursor: string | undefined; limit: number },
    partitions: number,
    streamVersion: (streamId: string, partition: number) => Promise<number>,
  ): Promise<StreamPage> {
    let cursor = page.cursor ?? '0';
    const found: { partition: number; streamId: string }[] = [];
    do {
      const step = await this.#conn().scan(cursor, this.#keys.streamPattern(), Math.max(10, page.limit - found.length));
      for (const key of step.keys) {
        const stream = this.#keys.parseStream(key);
        if (stream && stream.partition < partitions) found.push(stream);
      }
      cursor = step.cursor;
    } while (cursor !== '0' && found.length < page.limit);
    const streams: StreamSummary[] = await Promise.all(
      found.map(async (s) => ({ ...s, version: await streamVersion(s.streamId, s.partition) })),
    );
    return { streams: streams.filter((s) => s.version > 0), cursor: cursor === '0' ? undefined : cursor };
  }

  async listCheckpointGroups(): Promise<string[]> {
    const groups = new Set<string>();
    let cursor = '0';
    const prefix = this.#keys.group('');
    do {
      const step = await this.#conn().scan(cursor, this.#keys.groupPattern(), 500);
      for (const key of step.keys) if (key.startsWith(prefix)) groups.add(key.slice(prefix.length));
      cursor = step.cursor;
    } while (cursor !== '0');
    return [...groups].sort();
  }
}
