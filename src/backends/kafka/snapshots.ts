import { type BaseOptions, Producer } from '@platformatic/kafka';
import type { StoredSnapshot } from '../../core/driver.ts';
import { partitionOf } from '../../core/partition.ts';
import { CompactedView } from '../log/compacted-view.ts';
import type { PageReader } from '../log/scan.ts';
import type { TopicLayout } from './layout.ts';
import type { LogRecord } from './log.ts';
import { snapshotKey, snapshotRecord, storedSnapshot } from './records.ts';
import type { KafkaNames } from './topics.ts';

export interface KafkaSnapshotsContext {
  readonly names: KafkaNames;
  readonly layout: TopicLayout;
  base(role: string): BaseOptions;
  /** Pages of a partition of a topic, read_committed. */
  pages(topic: string, partition: number): PageReader<LogRecord>;
}

/**
 * Snapshots in the compacted topic `<prefix>.snapshots` (docs/architecture/kafka.md#snapshots):
 * the last record per stream and name is the snapshot; each partition is read once, lazily,
 * then only its tail.
 */
export class KafkaSnapshots {
  readonly #ctx: KafkaSnapshotsContext;
  readonly #views = new Map<number, CompactedView<LogRecord, StoredSnapshot>>();
  #producer: Producer | undefined;

  constructor(ctx: KafkaSnapshotsContext) {
    this.#ctx = ctx;
  }

  read(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    return this.#view(this.#partitionOf(streamId)).get(snapshotKey(streamId, name));
  }

  async write(snapshot: StoredSnapshot): Promise<void> {
    this.#producer ??= new Producer({ ...this.#ctx.base('snapshots'), idempotent: true });
    const covered = this.#ctx.layout.at(snapshot.position.partition);
    const record = snapshotRecord(this.#ctx.names.snapshots, this.#partitionOf(snapshot.streamId), snapshot, covered);
    await this.#producer.send({ messages: [record as never] });
  }

  async close(): Promise<void> {
    await this.#producer?.close().catch(() => undefined);
    this.#producer = undefined;
    this.#views.clear();
  }

  /** The snapshots topic has as many partitions as one events topic, whatever the categories. */
  #partitionOf(streamId: string): number {
    return partitionOf(streamId, this.#ctx.layout.perTopic);
  }

  #view(partition: number): CompactedView<LogRecord, StoredSnapshot> {
    let view = this.#views.get(partition);
    if (!view) {
      const { names, layout } = this.#ctx;
      view = new CompactedView(this.#ctx.pages(names.snapshots, partition), (record) => {
        const key = record.key?.toString('utf8');
        if (key === undefined) return undefined;
        return { key, value: storedSnapshot(record, (topic, p) => layout.partitionFor(topic ?? names.events, p)) };
      });
      this.#views.set(partition, view);
    }
    return view;
  }
}
