import { InvalidArgumentError } from '../../core/errors.ts';

/**
 * Key layout. Every key one append touches carries the partition's hash tag `{p<n>}`, so the
 * append script runs in one cluster slot (an `appendMany` over several partitions touches
 * several slots, which a cluster refuses: see append-many-script.ts). Stream names (checked by
 * the core) and prefixes cannot contain `{`, `}`, `:` or spaces, so no name can reach another key.
 *
 *   <prefix>:{p<n>}:s:<streamId>          the stream's events, entry ids 0-<version>
 *   <prefix>:{p<n>}:all                   the partition log, entry ids <ms>-<seq> (the time index)
 *   <prefix>:{p<n>}:ids                   hash: event id -> "<version> <streamId>" (dedup), the
 *                                         partition's last `idWindow` ids (id-window.ts)
 *   <prefix>:{p<n>}:snap:<streamId>:<name> hash: a snapshot
 *   <prefix>:{p<n>}:dlq:<group>           native group's dead letters in that partition
 *   <prefix>:{p<n>}:rd:<group>            dead letters redriven to the group, read like the log
 *   <prefix>:g:<group>                    hash: partition -> offset (subscription position)
 */
export class RedisKeys {
  readonly prefix: string;
  constructor(prefix: string) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(prefix)) {
      throw new InvalidArgumentError(`redis key prefix ${JSON.stringify(prefix)} must be 1-64 ASCII letters, digits, "_", "-" or "."`);
    }
    this.prefix = prefix;
  }
  /** The partition's hash tag, `{p<n>}`: it alone decides the cluster slot of the partition's keys. */
  hashTag(partition: number): string {
    return `{p${partition}}`;
  }
  stream(partition: number, streamId: string): string {
    return `${this.prefix}:${this.hashTag(partition)}:s:${streamId}`;
  }
  all(partition: number): string {
    return `${this.prefix}:${this.hashTag(partition)}:all`;
  }
  ids(partition: number): string {
    return `${this.prefix}:${this.hashTag(partition)}:ids`;
  }
  snapshot(partition: number, streamId: string, name: string): string {
    return `${this.prefix}:${this.hashTag(partition)}:snap:${streamId}:${name}`;
  }
  deadLetters(partition: number, group: string): string {
    return `${this.prefix}:${this.hashTag(partition)}:dlq:${group}`;
  }
  redrive(partition: number, group: string): string {
    return `${this.prefix}:${this.hashTag(partition)}:rd:${group}`;
  }
  group(group: string): string {
    return `${this.prefix}:g:${group}`;
  }
  /** `SCAN MATCH` pattern of every stream key (`stream()`) of every partition. */
  streamPattern(): string {
    return `${this.prefix}:{p*}:s:*`;
  }
  /** The partition and stream id of a key `stream()` made, or undefined for any other key. */
  parseStream(key: string): { partition: number; streamId: string } | undefined {
    const match = /^\{p(\d+)\}:s:([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(
      key.startsWith(`${this.prefix}:`) ? key.slice(this.prefix.length + 1) : '',
    );
    return match ? { partition: Number(match[1]), streamId: match[2]! } : undefined;
  }
  /** `SCAN MATCH` pattern of every subscription position key (`group()`). */
  groupPattern(): string {
    return `${this.prefix}:g:*`;
  }
  /** `SCAN MATCH` pattern of every key of this prefix (the prefix holds no glob characters). */
  scanPattern(): string {
    return `${this.prefix}:*`;
  }
}

/**
 * The Redis Cluster hash slot of a key, as CLUSTER KEYSLOT computes it: CRC16 (XMODEM) of the
 * hash tag (the text between the first `{` and the next `}`, when not empty), else of the whole
 * key, modulo 16384. A script runs on a cluster only when all its keys share one slot.
 */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/**
 * Offsets are the partition log's stream ids, `<ms>-<seq>`, packed as ms * 2^20 + seq so they
 * order like the ids and fit a bigint. The append script keeps seq below 2^20.
 */
const SEQ_BITS = 20n;
export function idToOffset(id: string): bigint {
  const dash = id.indexOf('-');
  return (BigInt(id.slice(0, dash)) << SEQ_BITS) | BigInt(id.slice(dash + 1));
}
export function offsetToId(offset: bigint): string {
  return `${offset >> SEQ_BITS}-${offset & ((1n << SEQ_BITS) - 1n)}`;
}
