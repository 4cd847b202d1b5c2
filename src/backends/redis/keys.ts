import { InvalidArgumentError } from '../../core/errors.ts';

/**
 * Key layout. Every key one append touches carries the partition's hash tag `{p<n>}`, so the
 * append script runs in one cluster slot. Stream names (checked by the core) and prefixes
 * cannot contain `{`, `}`, `:` or spaces, so no name can reach another key.
 *
 *   <prefix>:{p<n>}:s:<streamId>          the stream's events, entry ids 0-<version>
 *   <prefix>:{p<n>}:all                   the partition log, entry ids <ms>-<seq> (the time index)
 *   <prefix>:{p<n>}:ids                   hash: event id -> "<version> <streamId>" (dedup)
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
  stream(partition: number, streamId: string): string {
    return `${this.prefix}:{p${partition}}:s:${streamId}`;
  }
  all(partition: number): string {
    return `${this.prefix}:{p${partition}}:all`;
  }
  ids(partition: number): string {
    return `${this.prefix}:{p${partition}}:ids`;
  }
  snapshot(partition: number, streamId: string, name: string): string {
    return `${this.prefix}:{p${partition}}:snap:${streamId}:${name}`;
  }
  deadLetters(partition: number, group: string): string {
    return `${this.prefix}:{p${partition}}:dlq:${group}`;
  }
  redrive(partition: number, group: string): string {
    return `${this.prefix}:{p${partition}}:rd:${group}`;
  }
  group(group: string): string {
    return `${this.prefix}:g:${group}`;
  }
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
