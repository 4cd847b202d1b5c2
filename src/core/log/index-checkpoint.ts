// A partition index as bytes, for its checkpoints: what a cold process restores instead of
// reading the partition from the start (see partition-index.ts).
//
// Format 1: "EFX1", then unsigned LEB128 varints: through + 1 (0: nothing indexed); the number
// of streams, and per stream its id (byte length, UTF-8), its event count, the offset of its
// first event and the gap to each next one; the number of recent event ids, and per id its
// bytes and the gap from the previous id's offset (the first from 0). Gaps keep an offset at
// one or two bytes: about 2–3 bytes per event plus each stream's id once.

const MAGIC = 'EFX1';

export interface IndexState {
  /** Offset up to which the index was complete. */
  readonly through: bigint | undefined;
  /** Stream id -> offset of each version, ascending. */
  readonly streams: ReadonlyMap<string, readonly number[]>;
  /** Recent event ids -> offset, in offset order. */
  readonly ids: readonly (readonly [string, number])[];
}

export function encodeIndex(state: IndexState): Uint8Array {
  const out = new ByteWriter();
  out.text(MAGIC);
  out.varint(state.through === undefined ? 0 : Number(state.through) + 1);
  out.varint(state.streams.size);
  for (const [streamId, offsets] of state.streams) {
    out.string(streamId);
    out.varint(offsets.length);
    let previous = 0;
    offsets.forEach((offset, i) => {
      out.varint(i === 0 ? offset : offset - previous);
      previous = offset;
    });
  }
  out.varint(state.ids.length);
  let previous = 0;
  for (const [id, offset] of state.ids) {
    out.string(id);
    out.varint(offset - previous);
    previous = offset;
  }
  return out.bytes();
}

/** The state in `bytes`, or undefined when they are not a checkpoint this version can read. */
export function decodeIndex(bytes: Uint8Array): (IndexState & { readonly streams: Map<string, number[]> }) | undefined {
  try {
    const input = new ByteReader(bytes);
    if (input.text(MAGIC.length) !== MAGIC) return undefined;
    const through = input.varint();
    const streams = new Map<string, number[]>();
    for (let s = input.varint(); s > 0; s--) {
      const streamId = input.string();
      const offsets: number[] = [];
      let offset = 0;
      for (let i = 0, n = input.varint(); i < n; i++) {
        offset = i === 0 ? input.varint() : offset + input.varint();
        offsets.push(offset);
      }
      streams.set(streamId, offsets);
    }
    const ids: [string, number][] = [];
    let offset = 0;
    for (let i = input.varint(); i > 0; i--) {
      const id = input.string();
      offset += input.varint();
      ids.push([id, offset]);
    }
    if (!input.done) return undefined;
    return { through: through === 0 ? undefined : BigInt(through - 1), streams, ids };
  } catch {
    return undefined;
  }
}

class ByteWriter {
  #buffer = new Uint8Array(1024);
  #length = 0;

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a varint: ${value}`);
    this.#reserve(8);
    let rest = value;
    while (rest >= 0x80) {
      this.#buffer[this.#length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#length++] = rest;
  }

  string(value: string): void {
    const encoded = Buffer.from(value, 'utf8');
    this.varint(encoded.length);
    this.#reserve(encoded.length);
    this.#buffer.set(encoded, this.#length);
    this.#length += encoded.length;
  }

  text(value: string): void {
    const encoded = Buffer.from(value, 'latin1');
    this.#reserve(encoded.length);
    this.#buffer.set(encoded, this.#length);
    this.#length += encoded.length;
  }

  bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#buffer.length) return;
    const next = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + extra));
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
  }
}

class ByteReader {
  readonly #bytes: Uint8Array;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get done(): boolean {
    return this.#at === this.#bytes.length;
  }

  varint(): number {
    let value = 0;
    for (let scale = 1; ; scale *= 0x80) {
      if (this.#at >= this.#bytes.length || scale > 2 ** 56) throw new RangeError('truncated varint');
      const byte = this.#bytes[this.#at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
  }

  string(): string {
    const length = this.varint();
    return Buffer.from(this.#take(length)).toString('utf8');
  }

  text(length: number): string {
    return Buffer.from(this.#take(length)).toString('latin1');
  }

  #take(length: number): Uint8Array {
    if (this.#at + length > this.#bytes.length) throw new RangeError('truncated');
    const slice = this.#bytes.subarray(this.#at, this.#at + length);
    this.#at += length;
    return slice;
  }
}
