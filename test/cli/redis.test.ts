// The eventfold bin against a real Redis (4 partitions, a prefix of its own, its keys deleted after).
import { createClient } from 'redis';
import { redis, RedisKeys } from '../../src/backends/redis/index.ts';
import { REDIS_URL, uniqueName } from '../services/env.ts';
import { cliBackendSuite } from './backend-suite.ts';

const prefix = uniqueName('cli');

cliBackendSuite({
  name: 'Redis',
  url: `${REDIS_URL}?prefix=${prefix}&partitions=4`,
  driver: () => redis({ url: REDIS_URL, prefix, partitions: 4 }),
  partitions: 4,
  group: (name) => name,
  listsGroups: true,
  cleanup: async () => {
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for await (const page of client.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 1000 })) {
      for (const key of page) await client.unlink(key);
    }
    await client.close();
  },
});
