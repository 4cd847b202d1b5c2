// eventfold's Kafka driver against the services' broker: one `<prefix>.events` topic of 8
// partitions, a transactional producer per partition (one transaction per append), reads
// through its own read_committed filter over the Fetch API, snapshots in `<prefix>.snapshots`.
import { kafka } from '../../src/backends/kafka/index.ts';
import type { BenchTarget } from '../target.ts';
import { eventfoldTarget } from './eventfold.ts';
import { deletePrefix, kafkaBrokers, PARTITIONS, prefixFor } from './kafka-common.ts';

export function eventfoldKafka(): BenchTarget {
  return eventfoldTarget({
    driver: (dir) => kafka({ brokers: kafkaBrokers(), prefix: prefixFor(dir, 'ef'), partitions: PARTITIONS }),
    notes: [
      `eventfold: \`kafka({ brokers, prefix, partitions: ${PARTITIONS} })\` (@platformatic/kafka); each append is one transaction of its partition's transactional producer ` +
        '(`<prefix>.writer.p<n>`, idempotent, acks=all): begin, one Produce of the batch to the partition, EndTxn commit (the bench awaits each append; concurrent appends to one partition would share a transaction); the append then waits, polling ListOffsets read_committed, until the last stable offset passes the batch (read-your-writes), which raw does not do. ' +
        'Versions are checked in memory by the partition owner (the first append to a partition claims it: InitProducerId + a read of its tail; done during the warm-up)',
      'eventfold: each record carries key = stream id, value = the same JSON payload bytes as raw, and 7 headers (ef-id, ef-type, ef-schema, ef-codec, ef-meta, ef-version, ef-time), so it writes more bytes per event than raw',
      "eventfold: loads read the stream's partition through its read_committed filter (Fetch v17, isolation read_committed, aborted ranges and control batches dropped) and an in-process index stream -> offsets; " +
        "the index is built incrementally, so a repeated load fetches only from the stream's first offset, not the whole partition. Snapshots are records in the compacted `<prefix>.snapshots` topic",
      'eventfold: catch-up goes through the same read_committed filter, partition by partition; the checkpoint is an OffsetCommit of consumer group `<prefix>.<group>`, at most once a second and on catching up (no group membership, no rebalance)',
    ],
    cleanup: async (dir) => void (await deletePrefix(dir)),
  });
}
