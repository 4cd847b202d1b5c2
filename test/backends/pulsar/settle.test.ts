// A commit whose send ends without a receipt is settled before the lease answers (writers.ts):
// the writer reads on from its last entry until it finds its commit or another claim's marker.
// Here a test seam on the producer makes the send fail at once on our side, while the message
// either still goes to the broker (stored, receipt lost) or never leaves (not stored).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AppendRequest } from '../../../src/core/driver.ts';
import { PartitionFencedError } from '../../../src/core/errors.ts';
import { PulsarAdmin } from '../../../src/backends/pulsar/admin.ts';
import { PulsarClient } from '../../../src/backends/pulsar/client/client.ts';
import { PulsarTimeoutError } from '../../../src/backends/pulsar/client/errors.ts';
import type { Producer } from '../../../src/backends/pulsar/client/producer.ts';
import { PulsarLog } from '../../../src/backends/pulsar/log.ts';
import { decodeCommit, kindOf, PulsarNames } from '../../../src/backends/pulsar/records.ts';
import { PulsarWriters } from '../../../src/backends/pulsar/writers.ts';
import { applyNamespacePolicies } from '../../../src/backends/pulsar/policies.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { dropNamespace } from './support.ts';

const namespace = uniqueName('settle');
const names = new PulsarNames('public', namespace, 'st');
let client: PulsarClient;
let log: PulsarLog;
/** What the next commit send does: goes through normally, is sent but reported failed, or fails unsent. */
let mode: 'normal' | 'receipt-lost' | 'never-sent' = 'normal';

before(async () => {
  const admin = new PulsarAdmin({ url: PULSAR_URL });
  await admin.ensureNamespace('public', namespace);
  await applyNamespacePolicies(admin, names.namespace, {});
  await admin.ensurePartitionedTopic(names.events, 1);
  client = new PulsarClient({ serviceUrl: PULSAR_SERVICE_URL });
  const create = client.createProducer.bind(client);
  client.createProducer = async (options) => {
    const producer: Producer = await create(options);
    const send = producer.send.bind(producer);
    producer.send = (payload, opts) => {
      if (opts?.properties?.['ef-kind'] !== 'commit' || mode === 'normal') return send(payload, opts);
      const failure = new PulsarTimeoutError('test seam: no receipt');
      if (mode === 'never-sent') return Promise.reject(failure);
      return send(payload, opts).then(() => Promise.reject(failure));
    };
    return producer;
  };
  log = new PulsarLog(client);
});
after(async () => {
  await log.close();
  await client.close();
  await dropNamespace('public', namespace);
});

const request = (version: number, id: string): AppendRequest => ({
  streamId: 'account-1',
  partition: 0,
  expectedVersion: version,
  events: [{ id, type: 'Deposited', schemaVersion: 1, codec: 'json', data: new Uint8Array([1]), metadata: '{}', time: Date.now() }],
});

async function commits(): Promise<string[]> {
  const out: string[] = [];
  for (let at = 0n; ; ) {
    const page = await log.page(names.partition(0), at, 1000);
    for (const m of page.messages) if (kindOf(m) === 'commit') out.push(...decodeCommit(m, 0).map((e) => e.id));
    if (page.end || page.next <= at) return out;
    at = page.next;
  }
}

describe('pulsar: settling a send without a receipt', () => {
  const writers = (): PulsarWriters => new PulsarWriters({ client, names, log, sendTimeoutMs: 30_000, transactionTimeoutMs: 10_000 });

  it('stored although the receipt was lost: the append stands, with its position, stored once', async () => {
    const lease = await writers().claim(0);
    mode = 'receipt-lost';
    const [result] = await lease.append([request(0, 'e1')]);
    mode = 'normal';
    assert.equal(result!.nextExpectedVersion, 1);
    assert.deepEqual(await commits(), ['e1']);
    const [event] = decodeCommit((await log.page(names.partition(0), result!.positions[0]!.offset, 1)).messages[0]!, 0);
    assert.equal(event!.id, 'e1', 'the position reported is where the commit is');
    await lease.release();
  });

  it('never stored: the append fails as fenced (nothing of it visible), and a new claim writes on', async () => {
    const lease = await writers().claim(0);
    mode = 'never-sent';
    await assert.rejects(lease.append([request(1, 'e2')]), PartitionFencedError);
    mode = 'normal';
    await assert.rejects(lease.append([request(1, 'e3')]), PartitionFencedError, 'a lease is dead after a failed send');
    const next = await writers().claim(0);
    assert.equal(next.caughtUpTo !== undefined, true);
    await next.append([request(1, 'e4')]);
    assert.deepEqual(await commits(), ['e1', 'e4']);
    await next.release();
    await lease.release();
  });
});
