import type { Inspector } from './inspector.ts';

/** A group's position in one partition and the events stored after it. */
export interface PartitionLag {
  readonly partition: number;
  /** Last processed offset; undefined: none saved (the group starts at the beginning). */
  readonly position: bigint | undefined;
  readonly head: bigint | undefined;
  /** Events after the position, up to the head. */
  readonly lag: number;
}

/**
 * Per partition, how many events are stored after `saved` up to the partition's head: counted
 * by reading them, since offsets may have gaps (markers, aborted records, other entries).
 */
export async function lagOf(
  inspector: Inspector,
  saved: readonly { partition: number; offset: bigint }[] | undefined,
  heads: readonly (bigint | undefined)[],
  onCount: (n: number) => void,
): Promise<PartitionLag[]> {
  const out: PartitionLag[] = [];
  let counted = 0;
  for (let partition = 0; partition < heads.length; partition++) {
    const position = saved?.find((p) => p.partition === partition)?.offset;
    const head = heads[partition];
    let lag = 0;
    if (head !== undefined && (position === undefined || position < head)) {
      for await (const _ of inspector.scanPartition(partition, position, head)) {
        lag++;
        onCount(++counted);
      }
    }
    out.push({ partition, position, head, lag });
  }
  return out;
}
