// eventfold's Pulsar driver against the services' broker: its own binary-protocol client
// (src/backends/pulsar/client), one `eventfold-events` topic of 8 partitions in a namespace of
// its own per round, a partition owner per partition (ExclusiveWithFencing producer, versions
// checked in memory), one message per append, reads through non-durable readers.
import { pulsar } from '../../src/backends/pulsar/index.ts';
import type { BenchTarget } from '../target.ts';
import { eventfoldTarget } from './eventfold.ts';
import { dropNamespaceOf, namespaceFor, PULSAR_PARTITIONS, pulsarUrls } from './pulsar-common.ts';

export function eventfoldPulsar(): BenchTarget {
  return eventfoldTarget({
    driver: (dir) => pulsar({ ...pulsarUrls(), namespace: namespaceFor(dir, 'ef'), partitions: PULSAR_PARTITIONS }),
    notes: [
      `eventfold: \`pulsar({ serviceUrl, adminUrl, namespace, partitions: ${PULSAR_PARTITIONS} })\` (its own binary-protocol client, no Pulsar library); ` +
        "the first append to a partition claims it (an ExclusiveWithFencing producer that fences earlier owners, plus a claim marker and a read of the partition's tail; some claims fall in the timed appends: the warm-up's streams do not reach every partition); " +
        "versions are then checked in memory by the owner, and an append is one message (no batching) holding all its events, awaited until the broker's receipt; index checkpoints go to `eventfold-index` every 20,000 events",
      'eventfold: each message carries, per event, the stream id, version, event id, type, schema version, codec, metadata and time around the same JSON payload bytes as raw, so it writes more bytes per event than raw',
      "eventfold: a load looks the stream's offsets up in an in-process index (built once per partition by reading it, then kept up to date) and reads those entries (`readAt`): from an in-process cache of entries read lately (32 MiB), else one reader read each, " +
        "so the timed loads (after a warm-up load) read the aggregate's entries from memory, where raw reads the partition from the broker every time; " +
        'snapshots are messages of the keyed `eventfold-state` topic, read as a table',
      'eventfold: catch-up reads the partitions with non-durable readers; the checkpoint is a message of the `eventfold-state` topic, at most once a second and on catching up',
    ],
    cleanup: (dir) => dropNamespaceOf(dir),
  });
}
