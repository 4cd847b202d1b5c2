// The toolkit for log drivers (Kafka, Pulsar): paged reads of one partition.

/** One read of a partition from some offset. */
export interface LogPage<R> {
  /** Records readers may see, in offset order (transaction markers and aborted records already dropped). */
  readonly records: readonly R[];
  /** Offset to read from next: past everything this page covered, markers included. */
  readonly next: bigint;
  /** Nothing readable lies past this page right now: a scan stops here. */
  readonly end: boolean;
}

/** Reads one page of a partition from offset `from`. */
export type PageReader<R> = (from: bigint) => Promise<LogPage<R>>;

/**
 * Reads a partition page by page from `from` until `visit` returns false or nothing more is
 * readable. Returns where a later scan goes on from: past the last page read to its end (the
 * start of the page `visit` stopped in, when it stopped).
 */
export async function scanLog<R>(read: PageReader<R>, from: bigint, visit: (record: R) => boolean | undefined): Promise<bigint> {
  let at = from;
  for (;;) {
    const page = await read(at);
    for (const record of page.records) if (visit(record) === false) return at;
    if (page.next <= at) return at; // nothing past `at` is readable yet
    at = page.next;
    if (page.end) return at;
  }
}
