import { Exclusive } from '../../core/exclusive.ts';
import { type PageReader, scanLog } from './scan.ts';

/**
 * The current value per key of one partition of a compacted log (Kafka's compacted topics,
 * Pulsar's compacted reads): read once, lazily, then only its tail on each look. A record whose
 * value decodes to undefined is a tombstone and removes its key. Memory: every live key and
 * value of the partition.
 */
export class CompactedView<R, V> {
  readonly #read: PageReader<R>;
  readonly #decode: (record: R) => { key: string; value: V | undefined } | undefined;
  readonly #values = new Map<string, V>();
  readonly #catchUp = new Exclusive();
  #next = 0n;

  constructor(read: PageReader<R>, decode: (record: R) => { key: string; value: V | undefined } | undefined) {
    this.#read = read;
    this.#decode = decode;
  }

  /** The value of `key` as of now (after reading what was written since the last look). */
  async get(key: string): Promise<V | undefined> {
    await this.#catchUp.run(async () => {
      this.#next = await scanLog(this.#read, this.#next, (record) => {
        const entry = this.#decode(record);
        if (!entry) return undefined;
        if (entry.value === undefined) this.#values.delete(entry.key);
        else this.#values.set(entry.key, entry.value);
        return undefined;
      });
    });
    return this.#values.get(key);
  }
}
