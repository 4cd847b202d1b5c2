// Event types in the broker's schema registry, on the real standalone: what open() registers
// (read back through admin REST), compatible and incompatible changes under the namespace's
// strategy, validators without a JSON Schema, and names that could reach an admin URL.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { z } from 'zod';
import { type AnyEventType, createEventStore, defineEvent, InvalidArgumentError, SchemaIncompatibleError } from '../../../src/index.ts';
import { pulsar, type PulsarDriverOptions } from '../../../src/backends/pulsar/index.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { admin, dropNamespace } from './support.ts';

const tenant = 'public';
const namespaces: string[] = [];
after(async () => {
  for (const ns of namespaces) await dropNamespace(tenant, ns);
});

function driver(namespace: string, options: PulsarDriverOptions = {}) {
  if (!namespaces.includes(namespace)) namespaces.push(namespace);
  return pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, tenant, namespace, partitions: 1, ...options });
}

function open(namespace: string, events: readonly AnyEventType[], options: PulsarDriverOptions = {}) {
  return createEventStore({ driver: driver(namespace, options), events });
}

interface Registered {
  readonly version: number;
  readonly type: string;
  readonly data: string;
  readonly properties: Record<string, string>;
}

/** Every version of a type's lineage, read back through REST; [] when none is registered. */
async function versions(namespace: string, type: string, schemaVersion = 1): Promise<Registered[]> {
  const topic = driver(namespace).names.schema(type, schemaVersion);
  const res = await admin('GET', `schemas/${topic.slice('persistent://'.length).split('/').map(encodeURIComponent).join('/')}/schemas`);
  if (res.status === 404) return [];
  assert.ok(res.ok, `GET schemas of ${topic} answered ${res.status}`);
  return ((await res.json()) as { getSchemaResponses: Registered[] }).getSchemaResponses;
}

const V1 = z.object({ orderId: z.string(), total: z.number() });
const placedV1 = defineEvent({ type: 'OrderPlaced', schema: V1 });
const placedV2 = defineEvent({ type: 'OrderPlaced', schema: V1.extend({ note: z.string().optional() }) });
const withRequired = defineEvent({ type: 'OrderPlaced', schema: V1.extend({ currency: z.string() }) });
const typeChanged = defineEvent({ type: 'OrderPlaced', schema: z.object({ orderId: z.number(), total: z.number() }) });

describe('pulsar schema registry', () => {
  it('registers each event type; an optional field added is a second version; reopening adds none', async () => {
    const ns = uniqueName('ns-schema');
    const first = open(ns, [placedV1]);
    await first.append('order-1', placedV1({ orderId: 'o-1', total: 10 }));
    await first.close();
    const one = await versions(ns, 'OrderPlaced');
    assert.equal(one.length, 1);
    assert.equal(one[0]!.type, 'JSON');
    const avro = JSON.parse(one[0]!.data) as { type: string; fields: { name: string; type: unknown }[] };
    assert.equal(avro.type, 'record');
    assert.deepEqual(
      avro.fields.map((f) => [f.name, f.type]),
      [
        ['orderId', 'string'],
        ['total', 'double'],
      ],
    );
    assert.equal(one[0]!.properties['eventfold.schemaVersion'], '1');
    assert.equal(await (await admin('GET', `namespaces/${tenant}/${ns}/schemaCompatibilityStrategy`)).json(), 'BACKWARD');

    const second = open(ns, [placedV2]);
    assert.equal(await second.streamVersion('order-1'), 1);
    await second.close();
    assert.equal((await versions(ns, 'OrderPlaced')).length, 2, 'the compatible change is a new version');

    const third = open(ns, [placedV2]);
    await third.append('order-1', placedV2({ orderId: 'o-1', total: 3, note: 'gift' }));
    await third.close();
    assert.equal((await versions(ns, 'OrderPlaced')).length, 2, 'the same schema again registers nothing');
  });

  it('refuses an incompatible change at open, naming the type and the strategy; stored events stay readable', async () => {
    const ns = uniqueName('ns-schema');
    const first = open(ns, [placedV1]);
    await first.append('order-1', placedV1({ orderId: 'o-1', total: 10 }));
    await first.close();

    for (const changed of [withRequired, typeChanged]) {
      const store = open(ns, [changed]);
      await assert.rejects(store.streamVersion('order-1'), (error: unknown) => {
        assert.ok(error instanceof SchemaIncompatibleError, String(error));
        assert.equal(error.code, 'SCHEMA_INCOMPATIBLE');
        assert.equal(error.eventType, 'OrderPlaced');
        assert.equal(error.strategy, 'BACKWARD');
        assert.match(error.message, /OrderPlaced/);
        assert.match(error.message, /BACKWARD/);
        assert.match(error.reason, /compatibility check/);
        return true;
      });
      // The refusal is not remembered: the next use asks the broker again.
      await assert.rejects(store.streamVersion('order-1'), SchemaIncompatibleError);
      await store.close();
    }
    assert.equal((await versions(ns, 'OrderPlaced')).length, 1, 'nothing of the refused schemas was registered');

    const again = open(ns, [placedV1]);
    const read = [];
    for await (const e of again.readStream('order-1')) read.push(e.data);
    assert.deepEqual(read, [{ orderId: 'o-1', total: 10 }]);
    await again.close();
  });

  it('takes the strategy from the options: under FULL an added required field is refused, under FORWARD it is not', async () => {
    const full = uniqueName('ns-schema');
    const s1 = open(full, [placedV1], { schemaCompatibility: 'FULL' });
    await s1.streamVersion('order-1');
    await s1.close();
    assert.equal(await (await admin('GET', `namespaces/${tenant}/${full}/schemaCompatibilityStrategy`)).json(), 'FULL');
    const s2 = open(full, [withRequired], { schemaCompatibility: 'FULL' });
    await assert.rejects(s2.streamVersion('order-1'), (e: unknown) => e instanceof SchemaIncompatibleError && /FULL/.test(e.message));
    await s2.close();

    const forward = uniqueName('ns-schema');
    const f1 = open(forward, [placedV1], { schemaCompatibility: 'FORWARD' });
    await f1.streamVersion('order-1');
    await f1.close();
    const f2 = open(forward, [withRequired], { schemaCompatibility: 'FORWARD' });
    await f2.streamVersion('order-1');
    await f2.close();
    assert.equal((await versions(forward, 'OrderPlaced')).length, 2);

    assert.throws(() => driver(forward, { schemaCompatibility: 'NOPE' as 'FULL' }), InvalidArgumentError);
  });

  it('a new schema version is a new lineage: a breaking change with an upcaster opens, old events read upcast', async () => {
    const ns = uniqueName('ns-schema');
    const first = open(ns, [placedV1]);
    await first.append('order-1', placedV1({ orderId: 'o-1', total: 10 }));
    await first.close();
    const placedV2Breaking = defineEvent({
      type: 'OrderPlaced',
      schema: z.object({ orderId: z.string(), total: z.number(), currency: z.string() }),
      schemaVersion: 2,
      upcasters: { 1: (old) => ({ ...(old as object), currency: 'EUR' }) },
    });
    const second = open(ns, [placedV2Breaking]);
    const read = [];
    for await (const e of second.readStream('order-1')) read.push(e.data);
    await second.close();
    assert.deepEqual(read, [{ orderId: 'o-1', total: 10, currency: 'EUR' }]);
    assert.equal((await versions(ns, 'OrderPlaced', 1)).length, 1);
    assert.equal((await versions(ns, 'OrderPlaced', 2)).length, 1);
  });

  it('a validator that cannot emit a JSON Schema registers without a definition, again and again', async () => {
    const ns = uniqueName('ns-schema');
    const handWritten: StandardSchemaV1<{ n: number }> = {
      '~standard': {
        version: 1,
        vendor: 'hand',
        validate: (value) =>
          typeof (value as { n?: unknown })?.n === 'number'
            ? { value: value as { n: number } }
            : { issues: [{ message: 'n must be a number' }] },
      },
    };
    const Counted = defineEvent({ type: 'Counted', schema: handWritten });
    for (let i = 0; i < 2; i++) {
      const store = open(ns, [Counted, placedV1]);
      await store.append('counter-1', Counted({ n: i }));
      await store.close();
    }
    const registered = await versions(ns, 'Counted');
    assert.equal(registered.length, 1);
    assert.equal(registered[0]!.type, 'NONE'); // Pulsar stores BYTES as NONE
    assert.equal(registered[0]!.properties['eventfold.definition'], 'none');
    assert.equal((await versions(ns, 'OrderPlaced')).length, 1);
  });

  it('names: dots and dashes reach the registry encoded; a name defineEvent would refuse never reaches the broker', async () => {
    const ns = uniqueName('ns-schema');
    const Dotted = defineEvent({ type: 'billing.Invoice-Sent', schema: z.object({ id: z.string() }) });
    const store = open(ns, [Dotted]);
    await store.streamVersion('invoice-1');
    await store.close();
    assert.equal((await versions(ns, 'billing.Invoice-Sent')).length, 1);
    const topics = (await (await admin('GET', `namespaces/${tenant}/${ns}/topics`)).json()) as string[];
    assert.ok(topics.includes(driver(ns).names.schema('billing.Invoice-Sent', 1)), topics.join(', '));

    // Straight to the driver, past defineEvent: the name is checked before any request.
    const raw = driver(ns);
    await raw.open();
    for (const type of ['../../tenants/x', 'a/b', 'a?b=1', 'a%2Fb', 'x=v1', '']) {
      await assert.rejects(raw.registerEventTypes([{ type, schemaVersion: 1 }]), InvalidArgumentError, type);
    }
    await raw.close();
    const after = (await (await admin('GET', `namespaces/${tenant}/${ns}/topics`)).json()) as string[];
    assert.deepEqual(after.sort(), topics.sort(), 'no topic was made for a refused name');
  });
});
