// The conformance suite on a real Redis Cluster: three masters on 127.0.0.1:7001-7003
// (scripts/services `redis-cluster`). Eight partitions, so the hash tags {p0}..{p7} of one
// store land on every master.
import { createCluster } from 'redis';
import { redis, RedisKeys } from '../../../src/backends/redis/index.ts';
import { runConformanceSuite } from '../../conformance/suite.ts';
import { REDIS_CLUSTER_URLS } from '../../services/env.ts';

const rootNodes = REDIS_CLUSTER_URLS.map((url) => ({ url }));
const prefixes: string[] = [];
runConformanceSuite({
  name: 'redis (cluster, 3 masters)',
  driver: (storeName) => {
    prefixes.push(storeName);
    return redis({ cluster: { rootNodes }, prefix: storeName, partitions: 8 });
  },
  cleanup: async () => {
    // A key lives on the master that owns its slot: scan every master. Keys of different
    // slots cannot go in one UNLINK on a cluster, so one key at a time.
    const cluster = createCluster({ rootNodes });
    cluster.on('error', () => undefined);
    await cluster.connect();
    try {
      for (const master of cluster.masters) {
        const node = await cluster.nodeClient(master);
        for (const prefix of new Set(prefixes)) {
          for await (const keys of node.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 500 })) {
            await Promise.all(keys.map((key) => node.unlink(key)));
          }
        }
      }
    } finally {
      await cluster.close();
    }
  },
});
