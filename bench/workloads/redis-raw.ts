// The raw baseline on Redis: the plain node-redis client doing the same work as eventfold with
// the fewest commands a hand-written store would use, and none of its checks.
//
// Keys (all under this run's prefix):
//   <prefix>:s:<stream>          one stream per aggregate, auto ids, fields t (type), d (payload)
//   <prefix>:p<n>:all            partition logs for the catch-up, fields s, v, t, d
//   <prefix>:multi:...           the same two layouts, written by the MULTI variant only
import { partitionOf } from '../../src/index.ts';
import { evolveBench, initialBenchState, type BenchEventData, type BenchTarget, type CatchUp, type LoadResult } from '../target.ts';
import { connectOnce, deletePrefix, prefixFor } from './redis-common.ts';
import { PARTITIONS } from './redis-eventfold.ts';

type Client = Awaited<ReturnType<typeof connectOnce>>;

const TYPE = 'Deposited';

export function rawRedis(): BenchTarget {
  let client: Client | undefined;
  let prefix = '';
  const c = (): Client => {
    if (!client) throw new Error('raw Redis target is not open');
    return client;
  };
  const streamKey = (streamId: string, ns = ''): string => `${prefix}:${ns}s:${streamId}`;
  const logKey = (partition: number, ns = ''): string => `${prefix}:${ns}p${partition}:all`;

  return {
    name: 'raw',
    snapshots: false,
    notes: [
      'raw: the plain node-redis 5 client (`createClient({ url })` and its typed `xAdd`, `multi`, `xRange`, `xRead`), one connection',
      'raw: an append is `XADD <stream> * t Deposited d <payload>` (the same JSON payload bytes eventfold stores in its `d` field); a 100-event append is one MULTI/EXEC of 100 XADDs (atomic, one round trip). ' +
        'It does no expected-version check, no duplicate-id check, no second write to a partition log, and stores no event id, metadata or time: the cheapest write of the payload, not an event store',
      'raw (rows marked "raw as MULTI"): the same appends as MULTI/EXEC of `XADD <stream>` + `XADD <partition log>` per event, i.e. the two writes eventfold makes, still without any check; to separate keys, so loads and catch-up do not see them',
      'raw: loads are one `XRANGE <stream> - +` of the whole stream + JSON.parse + fold (eventfold reads pages of 500); raw has no snapshots, so both load rows are the same full fold',
      `raw: catch-up is \`XREAD COUNT 100 STREAMS <${PARTITIONS} partition logs>\` from 0-0 until every event was read (COUNT is per stream: up to ${PARTITIONS * 100} entries per call), JSON.parse of each payload, no checkpoint. ` +
        'Raw appends wrote the aggregate streams only, so its partition logs are filled just before the catch-up, untimed, by copying every aggregate stream (fields s, v, t, d)',
    ],
    appendVariants: [
      {
        label: 'raw as MULTI { XADD stream, XADD partition log }',
        async append(streamId, events, expectedVersion) {
          const multi = c().multi();
          const stream = streamKey(streamId, 'multi:');
          const log = logKey(partitionOf(streamId, PARTITIONS), 'multi:');
          events.forEach((data, i) => {
            const d = JSON.stringify(data);
            multi.xAdd(stream, '*', { t: TYPE, d });
            multi.xAdd(log, '*', { s: streamId, v: String(expectedVersion + i + 1), t: TYPE, d });
          });
          await multi.exec();
          return expectedVersion + events.length;
        },
      },
    ],
    async open(dir) {
      prefix = prefixFor(dir, 'raw');
      client = await connectOnce();
    },
    async append(streamId, events: readonly BenchEventData[], expectedVersion) {
      const key = streamKey(streamId);
      if (events.length === 1) {
        await c().xAdd(key, '*', { t: TYPE, d: JSON.stringify(events[0]) });
      } else {
        const multi = c().multi();
        for (const data of events) multi.xAdd(key, '*', { t: TYPE, d: JSON.stringify(data) });
        await multi.exec();
      }
      return expectedVersion + events.length; // trusted, not checked: raw has no version check
    },
    async load(streamId): Promise<LoadResult> {
      const entries = await c().xRange(streamKey(streamId), '-', '+');
      let state = initialBenchState();
      for (const entry of entries) state = evolveBench(state, JSON.parse(String(entry.message.d)) as BenchEventData);
      return { version: entries.length, state, eventsFolded: entries.length };
    },
    async prepareCatchUp() {
      const redis = c();
      const streamPrefix = streamKey('');
      for await (const keys of redis.scanIterator({ MATCH: `${streamPrefix}*`, COUNT: 1000 })) {
        for (const key of keys) {
          const streamId = key.slice(streamPrefix.length);
          const log = logKey(partitionOf(streamId, PARTITIONS));
          const entries = await redis.xRange(key, '-', '+');
          // Commands issued in one tick are pipelined by node-redis.
          for (let i = 0; i < entries.length; i += 1000) {
            await Promise.all(
              entries
                .slice(i, i + 1000)
                .map((entry, j) => redis.xAdd(log, '*', { s: streamId, v: String(i + j + 1), t: TYPE, d: String(entry.message.d) })),
            );
          }
        }
      }
    },
    async catchUp(_group, total): Promise<CatchUp> {
      const redis = c();
      const keys = Array.from({ length: PARTITIONS }, (_, p) => logKey(p));
      const index = new Map(keys.map((key, i) => [key, i]));
      const after = keys.map(() => '0-0');
      let handled = 0;
      let sum = 0;
      while (handled < total) {
        const reply = await redis.xRead(
          keys.map((key, i) => ({ key, id: after[i]! })),
          { COUNT: 100 },
        );
        if (!reply || !Array.isArray(reply) || reply.length === 0) break;
        for (const { name, messages } of reply as { name: string; messages: { id: string; message: Record<string, string> }[] }[]) {
          for (const m of messages) {
            sum += (JSON.parse(m.message.d!) as BenchEventData).amount;
            handled++;
          }
          const last = messages[messages.length - 1];
          if (last) after[index.get(String(name))!] = last.id;
        }
      }
      if (handled !== total || sum <= 0) throw new Error(`raw catch-up read ${handled} events, expected ${total}`);
      return { handled, stop: async () => undefined };
    },
    async close() {
      await client?.close();
      client = undefined;
    },
    cleanup: async (dir) => void (await deletePrefix(dir)),
  };
}
