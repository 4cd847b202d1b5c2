// The simplest reader of index checkpoints, to compare the backward search with: every record
// of the partition, forward, and a checkpoint is complete where its kind's last records are its
// parts 0 … n-1 of one generation in a row. Header names as docs/architecture/kafka.md gives them.
import type { IndexCheckpoints } from '../../../src/core/driver.ts';
import type { LogRecord } from '../../../src/backends/kafka/log.ts';

interface Chunk {
  readonly offset: bigint;
  readonly generation: string;
  readonly part: number;
  readonly parts: number;
  readonly value: Buffer;
}

function header(record: LogRecord, name: string): string | undefined {
  const h = record.headers.find(([k]) => k?.toString() === name);
  return h?.[1]?.toString();
}

/** The last complete checkpoint of one kind: its chunks in order. */
function lastComplete(records: readonly LogRecord[], delta: boolean): Chunk[] | undefined {
  const chunks: Chunk[] = [];
  for (const r of records) {
    const generation = header(r, 'ef-index-gen');
    if (generation === undefined || !r.value || (header(r, 'ef-index-kind') === 'delta') !== delta) continue;
    const part = Number(header(r, 'ef-index-part'));
    const parts = Number(header(r, 'ef-index-parts'));
    chunks.push({ offset: r.offset, generation, part, parts, value: r.value });
  }
  for (let end = chunks.length - 1; end >= 0; end--) {
    const { parts, generation } = chunks[end]!;
    if (end - parts + 1 < 0) continue;
    const run = chunks.slice(end - parts + 1, end + 1);
    if (run.length === parts && run.every((c, i) => c.part === i && c.parts === parts && c.generation === generation)) return run;
  }
  return undefined;
}

/** What a cold read must return from these records (a partition's visible records, in order), and where the full one starts. */
export function referenceCheckpoints(records: readonly LogRecord[]): IndexCheckpoints & { readonly fullAt: bigint | undefined } {
  const full = lastComplete(records, false);
  const delta = lastComplete(records, true);
  // A delta older than the last full checkpoint extends an older one: useless.
  const useDelta = delta && (!full || delta[0]!.offset > full[0]!.offset);
  return {
    full: full && Buffer.concat(full.map((c) => c.value)),
    delta: useDelta ? Buffer.concat(delta.map((c) => c.value)) : undefined,
    fullAt: full?.[0]?.offset,
  };
}
