/**
 * Which partition a stream lives in. Every event of one stream lands in one partition, so
 * per-stream order holds; there is no order across partitions. This is Kafka's default
 * partitioner (murmur2 of the UTF-8 key, positive, modulo the count), so a stream lands in
 * the same partition whether eventfold or a plain Kafka producer writes it.
 */
export function partitionOf(streamId: string, partitions: number): number {
  if (partitions <= 1) return 0;
  return (murmur2(new TextEncoder().encode(streamId)) & 0x7fffffff) % partitions;
}

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), 32-bit. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (seed ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4]! & 0xff) | ((data[i4 + 1]! & 0xff) << 8) | ((data[i4 + 2]! & 0xff) << 16) | ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  const base = length & ~3;
  if (rest === 3) h ^= (data[base + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[base + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[base]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
