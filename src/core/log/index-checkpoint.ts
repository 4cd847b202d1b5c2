// A partition index as bytes, for its checkpoints: what a cold process restores instead of
// reading the partition from the start (see partition-index.ts).
//
// Two kinds. A full checkpoint ("EFX1") is the whole index up to `through`. A delta ("EFD1")
// is what the index gained after a full one's `through` (`from`): the offsets past it of each
// stream that grew, and the recent event ids past it. A cold process restores the last full
// checkpoint and the last delta that starts at or before it (`combineIndex`), then reads the
// tail. So checkpoints can be frequent (a delta costs what was added since the full one) and a
// cold start's tail short, whatever the history.
//
// Format: the magic, then unsigned LEB128 varints: (delta only: from + 1;) through + 1 (0:
// nothing indexed); the number of streams, and per stream its id (byte length, UTF-8), its
// offset count, the first offset and the gap to each next one; the number of event ids, and per
// id its bytes and the gap from the previous id's offset (the first from 0). Gaps keep an offset
// at one or two bytes: about 2–3 bytes per event plus each stream's id once.

const FULL = 'EFX1';
const DELTA = 'EFD1';

export interface IndexState {
  /** Offset up to which the index was complete. */
  readonly through: bigint | undefined;
  /** Stream id -> offset of each version, ascending (a delta: only the offsets past `from`). */
  readonly streams: ReadonlyMap<string, readonly number[]>;
  /** Recent event ids -> offset, in offset order. */
  readonly ids: readonly (readonly [string, number])[];
}

/** What the index gained after `from` (the `through` of the full checkpoint it extends). */
export interface IndexDelta extends IndexState {
  readonly from: bigint;
}

export function encodeIndex(state: IndexState): Uint8Array {
  const out = new ByteWriter();
  out.text(FULL);
  writeBody(out, state);
  return out.bytes();
}

export function encodeIndexDelta(delta: IndexDelta): Uint8Array {
  const out = new ByteWriter();
  out.text(DELTA);
  out.varint(Number(delta.from) + 1);
  writeBody(out, delta);
  return out.bytes();
}

function writeBody(out: ByteWriter, state: IndexState): void {
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
}

/** A decoded checkpoint, with mutable collections (restoring moves them into the index). */
interface Decoded {
  readonly through: bigint | undefined;
  readonly streams: Map<string, number[]>;
  readonly ids: [string, number][];
}

/** The state in `bytes`, or undefined when they are not a full checkpoint this version can read. */
export function decodeIndex(bytes: Uint8Array): Decoded | undefined {
  try {
    const input = new ByteReader(bytes);
    if (input.text(FULL.length) !== FULL) return undefined;
    return readBody(input);
  } catch {
    return undefined;
  }
}

/** The delta in `bytes`, or undefined when they are not a delta this version can read. */
export function decodeIndexDelta(bytes: Uint8Array): (Decoded & { readonly from: bigint }) | undefined {
  try {
    const input = new ByteReader(bytes);
    if (input.text(DELTA.length) !== DELTA) return undefined;
    const from = input.varint();
    const body = readBody(input);
    if (!body || from === 0 || body.through === undefined || BigInt(from - 1) > body.through) return undefined;
    return { ...body, from: BigInt(from - 1) };
  } catch {
    return undefined;
  }
}

function readBody(input: ByteReader): Decoded | undefined {
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
}

/** A restored index, and what its checkpoints say about it. */
export interface RestoredIndex {
  readonly state: Decoded;
  /** `through` of the full checkpoint, and the events it holds. */
  readonly fullThrough: bigint | undefined;
  readonly fullEvents: number;
  /** Streams that grew after the full checkpoint (from the delta). */
  readonly grown: ReadonlySet<string>;
}

/**
 * The index a cold process starts from: the full checkpoint, extended by the delta when the
 * delta starts at or before the full one's end and reaches past it (a delta of an older full
 * checkpoint holds everything after that one's end, so the part past this one's end applies
 * too). Undefined when the full checkpoint is missing or unreadable; the delta is ignored when
 * it is unreadable or does not fit.
 */
export function combineIndex(full: Uint8Array | undefined, delta: Uint8Array | undefined): RestoredIndex | undefined {
  const base = full && decodeIndex(full);
  if (!base) return undefined;
  let fullEvents = 0;
  for (const offsets of base.streams.values()) fullEvents += offsets.length;
  const grown = new Set<string>();
  const restored = { state: base, fullThrough: base.through, fullEvents, grown };
  const extra = delta && decodeIndexDelta(delta);
  if (!extra || base.through === undefined || extra.from > base.through || extra.through! <= base.through) return restored;
  const end = Number(base.through);
  for (const [streamId, offsets] of extra.streams) {
    const past = offsets.filter((o) => o > end);
    if (past.length === 0) continue;
    grown.add(streamId);
    const known = base.streams.get(streamId);
    if (!known) base.streams.set(streamId, past);
    else for (const offset of past) known.push(offset);
  }
  for (const entry of extra.ids) if (entry[1] > end) base.ids.push(entry);
  return { ...restored, state: { through: extra.through, streams: base.streams, ids: base.ids } };
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
