import type { StandardJSONSchemaV1 } from '@standard-schema/spec';
import type { EventTypeDescription } from './driver.ts';
import type { AnyEventType } from './event-type.ts';

/**
 * What a driver learns of the store's event types (`DriverBase.registerEventTypes`). The JSON
 * Schema comes from the Standard JSON Schema interface (`~standard.jsonSchema`), so no
 * validator library is imported here; the output side, because that is what gets stored.
 * A schema without the interface, or whose converter throws (zod: transforms, dates), has none.
 */
export function describeEventTypes(types: readonly AnyEventType[]): EventTypeDescription[] {
  return types.map((t) => {
    const jsonSchema = jsonSchemaOf(t.schema);
    return jsonSchema === undefined
      ? { type: t.type, schemaVersion: t.schemaVersion }
      : { type: t.type, schemaVersion: t.schemaVersion, jsonSchema };
  });
}

function jsonSchemaOf(schema: unknown): Readonly<Record<string, unknown>> | undefined {
  const converter = (schema as Partial<StandardJSONSchemaV1> | null)?.['~standard']?.jsonSchema;
  if (typeof converter?.output !== 'function') return undefined;
  try {
    const out = converter.output({ target: 'draft-2020-12' });
    return typeof out === 'object' && out !== null && !Array.isArray(out) ? out : undefined;
  } catch {
    return undefined;
  }
}
