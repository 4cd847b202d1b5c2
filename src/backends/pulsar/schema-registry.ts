import type { EventTypeDescription } from '../../core/driver.ts';
import { DriverError, InvalidArgumentError, SchemaIncompatibleError } from '../../core/errors.ts';
import type { PulsarAdmin } from './admin.ts';
import { avroDefinition } from './avro-definition.ts';
import { PULSAR as NAME } from './client/errors.ts';
import type { PulsarNames } from './records.ts';

/** Pulsar's schema compatibility strategies (`SchemaCompatibilityStrategy`), as a namespace policy. */
export const SCHEMA_COMPATIBILITY = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'ALWAYS_COMPATIBLE',
  'ALWAYS_INCOMPATIBLE',
] as const;
export type PulsarSchemaCompatibility = (typeof SCHEMA_COMPATIBILITY)[number];

/** `value` when it is one of the strategies; the broker itself takes any word (and stores UNDEFINED). */
export function assertSchemaCompatibility(value: unknown): PulsarSchemaCompatibility {
  if (!SCHEMA_COMPATIBILITY.includes(value as PulsarSchemaCompatibility)) {
    throw new InvalidArgumentError(`schemaCompatibility must be one of ${SCHEMA_COMPATIBILITY.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as PulsarSchemaCompatibility;
}

/** Registrations in flight at once: each is two or three admin calls. */
const PARALLEL = 8;

/**
 * The store's event types in the broker's schema registry (research (g)). The registry keeps
 * one lineage per topic, and every event type shares the events topic, so each (event type,
 * schema version) gets a schema-only topic of its own (`PulsarNames.schema`; no message is
 * ever sent there). Per schema version, not per type: within one version the stored payloads
 * are read by the current schema directly, so a change must pass the strategy; a new schema
 * version is read through its upcasters instead, and starts a new lineage. A real topic rather
 * than a bare registry path, because deleting the topic deletes its schema, while the schema of
 * a path with no topic outlives even its namespace (seen live on 4.0.7).
 *
 * The namespace's strategy is set first (read, compare, write, read back: the broker takes an
 * unknown strategy silently as UNDEFINED). A type with an unchanged schema is a no-op; a
 * compatible change adds a version; an incompatible one (the broker answers 409) is a
 * `SchemaIncompatibleError` and registers nothing of that type.
 */
export class PulsarSchemaRegistry {
  readonly #admin: PulsarAdmin;
  readonly #names: PulsarNames;
  readonly #strategy: PulsarSchemaCompatibility;

  constructor(admin: PulsarAdmin, names: PulsarNames, strategy: PulsarSchemaCompatibility) {
    this.#admin = admin;
    this.#names = names;
    this.#strategy = strategy;
  }

  async register(types: readonly EventTypeDescription[]): Promise<void> {
    // Names first: a bad one fails before anything reaches the broker.
    const work = types.map((t) => ({ description: t, topic: this.#names.schema(t.type, t.schemaVersion) }));
    await this.#ensureStrategy();
    const queue = [...work];
    const errors: unknown[] = [];
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          await this.#registerOne(next.description, next.topic).catch((error: unknown) => errors.push(error));
        }
      }),
    );
    // A refusal is the error to report; any other failure comes after it.
    const refused = errors.find((e) => e instanceof SchemaIncompatibleError);
    if (refused ?? errors[0]) throw refused ?? errors[0];
  }

  async #ensureStrategy(): Promise<void> {
    const path = `namespaces/${this.#names.namespace}/schemaCompatibilityStrategy`;
    if ((await this.#admin.json<string>(path)) === this.#strategy) return;
    await this.#admin.ok('PUT', path, this.#strategy);
    const now = await this.#admin.json<string>(path);
    if (now !== this.#strategy) {
      throw new DriverError(
        NAME,
        `namespace ${this.#names.namespace} kept schema compatibility ${now} after it was set to ${this.#strategy}`,
      );
    }
  }

  async #registerOne(type: EventTypeDescription, topic: string): Promise<void> {
    const local = topic.slice(`persistent://${this.#names.namespace}/`.length);
    const at = `${this.#names.namespace}/${encodeURIComponent(local)}`;
    await this.#admin.ok('PUT', `persistent/${at}`, undefined, [409]);
    // No definition: Pulsar stores BYTES as type NONE, and posting BYTES again is refused ("exists
    // schema type NONE"), so an unchanged registration is skipped by reading the latest first.
    const schema =
      type.jsonSchema === undefined ? { type: 'BYTES', data: '' } : { type: 'JSON', data: avroDefinition(type.type, type.jsonSchema) };
    const latest = await this.#admin.request('GET', `schemas/${at}/schema`);
    if (latest.ok) {
      const found = (await latest.json()) as { type?: string; data?: string };
      const same =
        schema.type === 'BYTES' ? found.type === 'NONE' || found.type === 'BYTES' : found.type === 'JSON' && found.data === schema.data;
      if (same) return;
    } else if (latest.status !== 404) {
      throw new DriverError(NAME, `admin GET schema of ${topic} answered ${latest.status}: ${(await latest.text()).slice(0, 500)}`);
    }
    const properties = {
      'eventfold.type': type.type,
      'eventfold.schemaVersion': String(type.schemaVersion),
      'eventfold.definition': type.jsonSchema === undefined ? 'none' : 'avro-from-json-schema',
    };
    const res = await this.#admin.request('POST', `schemas/${at}/schema`, { type: schema.type, schema: schema.data, properties });
    if (res.ok) return;
    const reason = brokerReason(await res.text());
    if (res.status === 409) {
      throw new SchemaIncompatibleError(
        NAME,
        { eventType: type.type, schemaVersion: type.schemaVersion, strategy: this.#strategy },
        `${reason} (registry of ${topic})`,
      );
    }
    throw new DriverError(NAME, `registering the schema of ${type.type} on ${topic} answered ${res.status}: ${reason}`);
  }
}

/** The broker's message out of its answer: JSON `{reason}` or a Jetty error page (`<title>Error 409 …</title>`). */
function brokerReason(body: string): string {
  let text = body;
  try {
    const reason = (JSON.parse(body) as { reason?: unknown }).reason;
    if (typeof reason === 'string') text = reason;
  } catch {
    const title = /<title>([\s\S]*?)<\/title>/.exec(body)?.[1];
    if (title !== undefined) text = title.replace(/^Error \d+ /, '');
  }
  const decoded = text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  return decoded.replace(/\s+/g, ' ').trim().slice(0, 1000);
}
