// The conformance suite on a real Redis (scripts/services starts it on 127.0.0.1:6379).
import { createClient } from 'redis';
import { redis, RedisKeys } from '../../../src/backends/redis/index.ts';
import { runConformanceSuite } from '../../conformance/suite.ts';
import { REDIS_URL } from '../../services/env.ts';

const prefixes: string[] = [];
runConformanceSuite({
  name: 'redis (single node)',
  driver: (storeName) => {
    prefixes.push(storeName);
    return redis({ url: REDIS_URL, prefix: storeName, partitions: 4 });
  },
  cleanup: async () => {
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for (const prefix of new Set(prefixes)) {
      for await (const keys of client.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 500 })) {
        if (keys.length > 0) await client.unlink(keys);
      }
    }
    await client.close();
  },
});
