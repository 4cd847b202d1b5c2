// Connection URLs: openDriver/openStore against real SQLite files and a real Redis (single node
// and cluster); parameter validation, unavailable backends, missing peer packages, redaction.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import {
  BackendUnavailableError,
  createEventStore,
  DriverError,
  EventfoldError,
  InvalidArgumentError,
  InvalidConnectionUrlError,
  openDriver,
  openStore,
} from '../../src/index.ts';
import { RedisDriver, RedisKeys } from '../../src/backends/redis/index.ts';
import { SqliteDriver } from '../../src/backends/sqlite/index.ts';
import { loadBackend } from '../../src/connect/open-driver.ts';
import { kafkaOptions } from '../../src/connect/kafka-url.ts';
import { parseConnectionUrl, scrubError } from '../../src/connect/connection-url.ts';
import { redisOptions } from '../../src/connect/redis-url.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { KafkaDriver } from '../../src/backends/kafka/index.ts';
import { PulsarDriver } from '../../src/backends/pulsar/index.ts';
import { pulsarOptions } from '../../src/connect/pulsar-url.ts';
import { postgresOptions } from '../../src/connect/postgres-url.ts';
import { PostgresDriver } from '../../src/backends/postgres/index.ts';
import { dropSchemas } from '../backends/postgres/schemas.ts';
import { dropNamespace } from '../backends/pulsar/support.ts';
import { deleteStoreTopics } from '../backends/kafka/cleanup.ts';
import { KAFKA_BROKERS, POSTGRES_URL, PULSAR_SERVICE_URL, PULSAR_URL, REDIS_CLUSTER_URLS, REDIS_URL, uniqueName } from '../services/env.ts';

const events = [Deposited, Withdrawn] as const;
const dir = mkdtempSync(join(tmpdir(), 'eventfold-connect-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const redisHost = REDIS_URL.replace(/^redis:\/\//, '');
const clusterHosts = REDIS_CLUSTER_URLS.map((u) => u.replace(/^redis:\/\//, '')).join(',');

function rejectsWith<T extends Error>(type: new (...args: never[]) => T, check: (error: T) => void) {
  return (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    check(error);
    return true;
  };
}

describe('connection URLs: sqlite', () => {
  it('sqlite:<path> opens that file (WAL) and the store reads back what it appended; sqlite:///abs too', async () => {
    const path = join(dir, 'a.db');
    const store = await openStore(`sqlite:${path}?synchronous=normal`, { events });
    assert.equal(store.backend, 'sqlite');
    await store.append('account-1', [Deposited({ amount: 5 })]);
    await store.close();
    assert.ok(existsSync(path), 'the file named by the URL was created');
    const again = await openStore(`sqlite://${path}`, { events }); // `sqlite:///abs/a.db`
    const read = [];
    for await (const e of again.readStream('account-1')) read.push(e.data);
    assert.deepEqual(read, [{ amount: 5 }]);
    await again.close();
  });

  it('sqlite::memory: and sqlite: alone are in memory; relative paths stay relative', async () => {
    for (const url of ['sqlite::memory:', 'sqlite:']) {
      const driver = await openDriver(url);
      assert.ok(driver instanceof SqliteDriver);
      const store = createEventStore({ driver, events });
      await store.append('account-1', [Deposited({ amount: 1 })]);
      assert.equal(await store.streamVersion('account-1'), 1);
      await store.close();
    }
    assert.deepEqual(parseConnectionUrl('sqlite:./events.db').path, './events.db');
    assert.deepEqual(parseConnectionUrl('sqlite:data/my%20events.db').path, 'data/my events.db');
  });

  it('an unknown parameter is an InvalidConnectionUrlError naming it; a bad value names the parameter and what it must be', async () => {
    await assert.rejects(
      openDriver('sqlite::memory:?synchronus=full'),
      rejectsWith(InvalidConnectionUrlError, (e) => {
        assert.equal(e.parameter, 'synchronus');
        assert.ok(e instanceof InvalidArgumentError && e.code === 'INVALID_ARGUMENT');
        assert.match(e.message, /unknown parameter "synchronus".*known: synchronous, busyTimeoutMs/);
      }),
    );
    await assert.rejects(
      openDriver('sqlite::memory:?synchronous=sometimes'),
      rejectsWith(InvalidConnectionUrlError, (e) => {
        assert.equal(e.parameter, 'synchronous');
        assert.match(e.message, /must be full or normal, got "sometimes"/);
      }),
    );
    await assert.rejects(
      openDriver('sqlite::memory:?busyTimeoutMs=1&busyTimeoutMs=2'),
      rejectsWith(InvalidConnectionUrlError, (e) => assert.equal(e.parameter, 'busyTimeoutMs')),
    );
  });
});

describe('connection URLs: backends and schemes', () => {
  it('a backend this version lacks is a BackendUnavailableError "not available in this version"', async () => {
    await assert.rejects(
      loadBackend('fake', { schemes: ['fake'] }, (create) => create(parseConnectionUrl('fake://app:pw@h'), {})),
      rejectsWith(BackendUnavailableError, (e) => {
        assert.equal(e.code, 'BACKEND_UNAVAILABLE');
        assert.equal(e.backend, 'fake');
        assert.equal(e.missingPackage, undefined);
        assert.match(e.message, /the fake backend is not available in this version/);
      }),
    );
  });

  it('an unknown scheme, no scheme, or a non-string is an InvalidConnectionUrlError listing the schemes', async () => {
    await assert.rejects(
      openDriver('mongodb://h/x'),
      rejectsWith(InvalidConnectionUrlError, (e) => assert.match(e.message, /unknown scheme "mongodb:".*sqlite, redis/)),
    );
    await assert.rejects(
      openDriver('events.db'),
      rejectsWith(InvalidConnectionUrlError, (e) => assert.match(e.message, /no scheme/)),
    );
    await assert.rejects(openDriver(42 as unknown as string), InvalidConnectionUrlError);
  });

  it('a backend whose peer package is missing is a BackendUnavailableError naming the package to install', async () => {
    // A real module that imports a package that is not installed: Node's own ERR_MODULE_NOT_FOUND.
    const module = join(dir, 'needs-peer.mjs');
    writeFileSync(module, "import 'eventfold-test-missing-peer'; export const x = 1;\n");
    const entry = {
      schemes: ['fake'],
      peer: 'eventfold-test-missing-peer',
      create: async () => {
        await import(pathToFileURL(module).href);
        throw new Error('unreachable: the import must fail');
      },
    };
    await assert.rejects(
      loadBackend('fake', entry, (create) => create(parseConnectionUrl('fake://h'), {})),
      rejectsWith(BackendUnavailableError, (e) => {
        assert.equal(e.missingPackage, 'eventfold-test-missing-peer');
        assert.match(e.message, /needs the package "eventfold-test-missing-peer": npm install eventfold-test-missing-peer/);
        assert.equal((e.cause as { code?: string }).code, 'ERR_MODULE_NOT_FOUND');
      }),
    );
    // Another module missing is not mistaken for the peer.
    const other = { ...entry, peer: 'redis' };
    await assert.rejects(
      loadBackend('fake', other, (create) => create(parseConnectionUrl('fake://h'), {})),
      (e: unknown) => !(e instanceof BackendUnavailableError) && (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND',
    );
  });
});

describe('connection URLs: redis', () => {
  it('redis://host?prefix=…&partitions=4 writes under that prefix in 4 partitions (keys named by RedisKeys)', async () => {
    const prefix = uniqueName('connect');
    const driver = await openDriver(`redis://${redisHost}?prefix=${prefix}&partitions=4`);
    assert.ok(driver instanceof RedisDriver);
    assert.equal(driver.partitions, 4);
    const store = createEventStore({ driver, events });
    await store.append('account-7', [Deposited({ amount: 3 })]);
    const partition = store.partitionOf('account-7');
    await store.close();
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    try {
      const keys = new RedisKeys(prefix);
      assert.equal(await client.xLen(keys.stream(partition, 'account-7')), 1);
      assert.equal(await client.xLen(keys.all(partition)), 1);
      await client.del([keys.stream(partition, 'account-7'), keys.all(partition), keys.ids(partition)]);
    } finally {
      await client.close();
    }
  });

  it('several hosts connect to a Redis Cluster through them, and the store works across its masters', async () => {
    const prefix = uniqueName('connect');
    const driver = await openDriver(`redis://${clusterHosts}?prefix=${prefix}&partitions=8`);
    const store = createEventStore({ driver, events });
    for (let i = 0; i < 8; i++) await store.append(`account-${i}`, [Deposited({ amount: i + 1 })]);
    let total = 0;
    for await (const e of store.readAll()) total += e.type === 'Deposited' ? e.data.amount : 0;
    assert.equal(total, 36);
    await store.close();
  });

  it('a wrong password fails at open with a DriverError that never shows it; the redacted URL shows ***', async () => {
    const secret = 'hunter2-not-the-password';
    const driver = await openDriver(`redis://nobody:${secret}@${redisHost}?prefix=${uniqueName('connect')}`);
    const store = createEventStore({ driver, events });
    await assert.rejects(
      store.streamVersion('account-1'),
      rejectsWith(DriverError, (e) => {
        assert.doesNotMatch(`${e.message}\n${e.stack}\n${String((e.cause as Error | undefined)?.message)}`, /hunter2/);
        assert.match(e.message, /open failed/);
      }),
    );
    await store.close();
    assert.equal(parseConnectionUrl(`redis://default:${secret}@h:1/0`).redacted, 'redis://default:***@h:1/0');
    await assert.rejects(
      openDriver(`redis://u:${secret}@h?bogus=1`),
      rejectsWith(InvalidConnectionUrlError, (e) => {
        assert.doesNotMatch(e.message, /hunter2/);
        assert.match(e.message, /redis:\/\/u:\*\*\*@h\?bogus=1/);
      }),
    );
  });

  it('scrubError takes a password (plain and URL-encoded) out of an error, its stack and its cause, keeping its type', () => {
    const cause = new Error('dial redis://app:p%40ss@h failed');
    const error = new DriverError('redis', 'auth p@ss refused', cause);
    const scrubbed = scrubError(error, ['p@ss']);
    assert.equal(scrubbed, error);
    assert.ok(scrubbed instanceof DriverError);
    assert.equal(error.message, '[eventfold] [redis] auth *** refused');
    assert.doesNotMatch(`${error.stack}`, /p@ss/);
    assert.equal(cause.message, 'dial redis://app:***@h failed');
  });

  it('without a password in the URL, EVENTFOLD_REDIS_PASSWORD is used (here a wrong one: the server refuses it, unshown)', async () => {
    const secret = 'from-the-environment-42';
    const env = { EVENTFOLD_REDIS_PASSWORD: secret };
    assert.deepEqual(redisOptions(parseConnectionUrl('redis://h:1'), env).client, { password: secret });
    const driver = await openDriver(`redis://${redisHost}?prefix=${uniqueName('connect')}`, { env });
    const store = createEventStore({ driver, events });
    await assert.rejects(
      store.streamVersion('account-1'),
      rejectsWith(EventfoldError, (e) => assert.doesNotMatch(`${e.message}\n${e.stack}`, /from-the-environment/)),
    );
    await store.close();
  });

  it('redis options: db number, TLS with rediss://, cluster=true, and refused paths', () => {
    const one = redisOptions(parseConnectionUrl('rediss://app:pw@cache:6380/2?prefix=billing&idWindow=50'), {});
    assert.deepEqual(one, { prefix: 'billing', idWindow: 50, url: 'rediss://cache:6380/2', client: { username: 'app', password: 'pw' } });
    const cluster = redisOptions(parseConnectionUrl('redis://h1:7001?cluster=true'), {});
    assert.deepEqual(cluster.cluster?.rootNodes, [{ url: 'redis://h1:7001' }]);
    assert.throws(() => redisOptions(parseConnectionUrl('redis://h/x'), {}), InvalidConnectionUrlError);
    assert.throws(() => redisOptions(parseConnectionUrl('redis://h?partitions=0'), {}), /partitions.*positive integer/);
  });
});

describe('connection URLs: kafka', () => {
  it('kafka://<brokers>?prefix=…&partitions=2 opens a store on those topics (named by KafkaNames) that appends and reads', async () => {
    const prefix = uniqueName('connect');
    try {
      const driver = await openDriver(`kafka://${KAFKA_BROKERS.join(',')}?prefix=${prefix}&partitions=2&routing=false`);
      assert.ok(driver instanceof KafkaDriver);
      assert.equal(driver.partitions, 2);
      assert.equal(driver.names.events, `${prefix}.events`);
      const store = createEventStore({ driver, events });
      await store.append('account-1', [Deposited({ amount: 4 })], { expectedVersion: 'no_stream' });
      const read = [];
      for await (const e of store.readStream('account-1')) read.push(e.data);
      assert.deepEqual(read, [{ amount: 4 }]);
      await store.close();
    } finally {
      await deleteStoreTopics([prefix], 'connect-test-cleanup');
    }
  });

  it('a broker list, prefix, partitions, categories, SASL from the URL or the environment, TLS', () => {
    const o = kafkaOptions(parseConnectionUrl('kafka://b1:9092,b2?prefix=shop&partitions=8&categories=order,customer&routing=false'), {});
    assert.deepEqual(o, {
      brokers: ['b1:9092', 'b2:9092'],
      prefix: 'shop',
      partitions: 8,
      categories: ['order', 'customer'],
      routing: false,
    });
    const sasl = kafkaOptions(parseConnectionUrl('kafkas://app@b1:9093?sasl=plain'), { EVENTFOLD_KAFKA_PASSWORD: 'pw' });
    assert.deepEqual(sasl.clientOptions, { tls: {}, sasl: { mechanism: 'PLAIN', username: 'app', password: 'pw' } });
    assert.throws(
      () => kafkaOptions(parseConnectionUrl('kafka://b1?sasl=SCRAM-SHA-512'), {}),
      rejectsWith(InvalidConnectionUrlError, (e) => assert.equal(e.parameter, 'sasl')),
    );
    assert.throws(
      () => kafkaOptions(parseConnectionUrl('kafka://b1?partitions=8&partition=2'), {}),
      rejectsWith(InvalidConnectionUrlError, (e) => assert.match(e.message, /unknown parameter "partition" in kafka URL/)),
    );
    assert.throws(() => parseConnectionUrl('kafka://b1:9092,bad host:1'), /invalid host/);
  });
});

describe('connection URLs: pulsar', () => {
  it('pulsar://<broker>?namespace=…&partitions=2 opens a store in that namespace that appends and reads', async () => {
    const namespace = uniqueName('connect');
    const service = new URL(PULSAR_SERVICE_URL);
    try {
      const driver = await openDriver(`pulsar://${service.host}?namespace=${namespace}&partitions=2&adminUrl=${PULSAR_URL}`);
      assert.ok(driver instanceof PulsarDriver);
      assert.equal(driver.partitions, 2);
      const store = createEventStore({ driver, events });
      await store.append('account-1', [Deposited({ amount: 4 })], { expectedVersion: 'no_stream' });
      const read = [];
      for await (const e of store.readStream('account-1')) read.push(e.data);
      assert.deepEqual(read, [{ amount: 4 }]);
      await store.close();
    } finally {
      await dropNamespace('public', namespace);
    }
  });

  it('host and port, TLS, the admin URL on the same host, a token from the URL or the environment', () => {
    assert.deepEqual(pulsarOptions(parseConnectionUrl('pulsar://b1?tenant=acme&namespace=orders&prefix=shop&partitions=8'), {}), {
      serviceUrl: 'pulsar://b1:6650',
      adminUrl: 'http://b1:8080',
      tenant: 'acme',
      namespace: 'orders',
      prefix: 'shop',
      partitions: 8,
    });
    assert.deepEqual(pulsarOptions(parseConnectionUrl('pulsar+ssl://:jwt@b1'), {}), {
      serviceUrl: 'pulsar+ssl://b1:6651',
      adminUrl: 'https://b1:8443',
      tls: {},
      token: 'jwt',
    });
    assert.equal(pulsarOptions(parseConnectionUrl('pulsar://b1:7000'), { EVENTFOLD_PULSAR_TOKEN: 'env-jwt' }).token, 'env-jwt');
    assert.equal(pulsarOptions(parseConnectionUrl('pulsar://b1?adminUrl=http://a1:9090'), {}).adminUrl, 'http://a1:9090');
    for (const [url, pattern] of [
      ['pulsar://b1?adminUrl=ftp://a1', /adminUrl.*http\(s\):\/\/host/],
      ['pulsar://b1?adminUrl=http://a1/admin/v2/../x', /adminUrl/],
      ['pulsar://b1,b2', /names 2 hosts/],
      ['pulsar://b1/x', /has a path/],
      ['pulsar://b1?topic=x', /unknown parameter "topic" in pulsar URL/],
    ] as const) {
      assert.throws(
        () => pulsarOptions(parseConnectionUrl(url), {}),
        rejectsWith(InvalidConnectionUrlError, (e) => assert.match(e.message, pattern)),
        url,
      );
    }
  });

  it('a hostile namespace in the URL is refused before anything is sent', async () => {
    await assert.rejects(openDriver(`pulsar://127.0.0.1?namespace=${encodeURIComponent('a/../b')}`), InvalidArgumentError);
  });
});

describe('connection URLs: postgres', () => {
  it('postgres://…/db?schema=… opens a store in that schema that appends and reads', async () => {
    const schema = uniqueName('connect');
    try {
      const url = new URL(POSTGRES_URL);
      url.searchParams.set('schema', schema);
      const driver = await openDriver(url.toString());
      assert.ok(driver instanceof PostgresDriver);
      const store = createEventStore({ driver, events });
      await store.append('account-1', [Deposited({ amount: 4 })], { expectedVersion: 'no_stream' });
      const read = [];
      for await (const e of store.readStream('account-1')) read.push(e.data);
      assert.deepEqual(read, [{ amount: 4 }]);
      await store.close();
    } finally {
      await dropSchemas([schema]);
    }
  });

  it('host, port, database, credentials as pool options (from the URL or the environment), ssl, schema', () => {
    assert.deepEqual(postgresOptions(parseConnectionUrl('postgres://app:pw@db:6543/shop?schema=billing&ssl=true&max=5&pollMs=500'), {}), {
      pool: { host: 'db', port: 6543, database: 'shop', user: 'app', password: 'pw', ssl: true, max: 5 },
      schema: 'billing',
      pollMs: 500,
    });
    assert.deepEqual(
      postgresOptions(parseConnectionUrl('postgresql://db/shop'), { EVENTFOLD_POSTGRES_USERNAME: 'u', EVENTFOLD_POSTGRES_PASSWORD: 'p' })
        .pool,
      { host: 'db', database: 'shop', user: 'u', password: 'p' },
    );
    for (const [url, pattern] of [
      ['postgres://h1,h2/db', /names 2 hosts/],
      ['postgres://h/db/x', /one segment/],
      ['postgres://h/db?sslmode=require', /unknown parameter "sslmode" in postgres URL/],
    ] as const) {
      assert.throws(
        () => postgresOptions(parseConnectionUrl(url), {}),
        rejectsWith(InvalidConnectionUrlError, (e) => assert.match(e.message, pattern)),
        url,
      );
    }
  });

  it('a wrong password fails the first operation without showing it', async () => {
    const url = new URL(POSTGRES_URL);
    url.username = 'ef_nobody';
    url.password = 'sekret-pw-123';
    const store = await openStore(url.toString(), { events });
    await assert.rejects(store.streamVersion('account-1'), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.doesNotMatch(`${e.message} ${String((e as { cause?: unknown }).cause ?? '')}`, /sekret-pw-123/);
      return true;
    });
    await store.close();
  });
});
