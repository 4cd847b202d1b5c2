/**
 * JSON Schema → Avro schema, for Pulsar's registry. The broker takes a JSON-type schema only as
 * an Avro definition (a plain JSON Schema is refused, 422 "Invalid schema definition data for
 * JSON schema"), and its compatibility checks are Avro's schema resolution: a field the new
 * schema requires and the old one lacked breaks BACKWARD, a changed type breaks it, a field
 * added as optional does not. So the translation keeps what those checks can judge:
 *
 * - object with properties → record (one field per property; a property not in `required`
 *   becomes `["null", T]` with default null, so adding it is a compatible change); an object
 *   with only `additionalProperties` → map;
 * - string → string (an `enum`/`const` of strings → Avro enum, so a dropped value is caught),
 *   integer → long, number → double, boolean, null, array → array;
 * - `anyOf`/`oneOf`/a list of types → union;
 * - anything Avro cannot say (any/unknown `{}`, `$ref` recursion, tuples, `allOf`, `not`,
 *   unions Avro forbids) → `bytes`: opaque, that part is not checked.
 *
 * Names: records and enums are named by their path from the event type (stable across
 * versions, as Avro's resolution wants); a property name that is no Avro name is spelled as
 * `_x` and its UTF-8 bytes in hex.
 */
type Json = Readonly<Record<string, unknown>>;
type Avro = string | readonly Avro[] | { readonly [key: string]: unknown };

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPAQUE = 'bytes';
/** Deeper than this is opaque: a schema is data from a library, not trusted to be shallow. */
const MAX_DEPTH = 32;

/** The Avro definition (JSON text) for an event type's JSON Schema. */
export function avroDefinition(eventType: string, jsonSchema: Json): string {
  return JSON.stringify(new Translator().type(jsonSchema, avroName(eventType.replace(/[^A-Za-z0-9_]/g, '_')), 0));
}

/** A property name as an Avro field name: itself when it is one, else `_x<hex of UTF-8>`. */
export function avroName(name: string): string {
  return AVRO_NAME.test(name) && !name.startsWith('_x') ? name : `_x${Buffer.from(name, 'utf8').toString('hex')}`;
}

class Translator {
  /** Named types already defined: Avro wants every full name once. */
  readonly #names = new Set<string>();

  type(node: unknown, name: string, depth: number): Avro {
    if (!isObject(node) || depth > MAX_DEPTH) return OPAQUE;
    if (node.$ref !== undefined || node.allOf !== undefined || node.not !== undefined || node.if !== undefined) return OPAQUE;
    const branches = node.anyOf ?? node.oneOf;
    if (Array.isArray(branches)) return this.#union(branches.map((b, i) => this.type(b, `${name}_${i}`, depth + 1)));
    if (Array.isArray(node.type)) {
      return this.#union(node.type.map((t, i) => this.type({ ...node, type: t }, `${name}_${i}`, depth + 1)));
    }
    switch (node.type) {
      case 'string':
        return this.#enum(node, name) ?? 'string';
      case 'integer':
        return 'long';
      case 'number':
        return 'double';
      case 'boolean':
        return 'boolean';
      case 'null':
        return 'null';
      case 'array':
        return node.prefixItems !== undefined || !isObject(node.items)
          ? OPAQUE
          : { type: 'array', items: this.type(node.items, `${name}_item`, depth + 1) };
      case 'object':
        return this.#object(node, name, depth);
      case undefined:
        if (isObject(node.properties)) return this.#object(node, name, depth);
        return this.#enum(node, name) ?? OPAQUE;
      default:
        return OPAQUE;
    }
  }

  #object(node: Json, name: string, depth: number): Avro {
    const properties = node.properties;
    if (!isObject(properties)) {
      return isObject(node.additionalProperties)
        ? { type: 'map', values: this.type(node.additionalProperties, `${name}_value`, depth + 1) }
        : OPAQUE;
    }
    const required = new Set(Array.isArray(node.required) ? node.required : []);
    const recordName = this.#name(name);
    const fields: object[] = [];
    const seen = new Set<string>();
    for (const [key, sub] of Object.entries(properties)) {
      const field = avroName(key);
      if (seen.has(field)) return OPAQUE;
      seen.add(field);
      const type = this.type(sub, `${recordName}_${field}`, depth + 1);
      if (!required.has(key)) {
        fields.push({ name: field, type: nullFirst(type), default: null });
      } else if (isObject(sub) && primitiveDefault(type, sub.default)) {
        fields.push({ name: field, type, default: sub.default });
      } else {
        fields.push({ name: field, type });
      }
    }
    return { type: 'record', name: recordName, fields };
  }

  /** Strings limited to a set of Avro names (`enum`, `const`) → an Avro enum. */
  #enum(node: Json, name: string): Avro | undefined {
    const symbols = Array.isArray(node.enum) ? node.enum : typeof node.const === 'string' ? [node.const] : undefined;
    if (!symbols || symbols.length === 0) return undefined;
    if (!symbols.every((s) => typeof s === 'string' && AVRO_NAME.test(s)) || new Set(symbols).size !== symbols.length) {
      return symbols.every((s) => typeof s === 'string') ? 'string' : undefined;
    }
    return { type: 'enum', name: this.#name(name), symbols };
  }

  /** A union as Avro allows it: flat, no opaque part, no two members of one unnamed kind. */
  #union(members: readonly Avro[]): Avro {
    const flat: Avro[] = [];
    const kinds = new Set<string>();
    for (const m of members.flatMap((m) => (Array.isArray(m) ? m : [m]))) {
      if (m === OPAQUE) return OPAQUE;
      const kind = typeof m === 'string' ? m : isObject(m) && (m.type === 'array' || m.type === 'map') ? String(m.type) : undefined;
      if (kind !== undefined) {
        if (kinds.has(kind)) {
          if (typeof m === 'string') continue; // the same primitive twice: once is enough
          return OPAQUE;
        }
        kinds.add(kind);
      }
      flat.push(m);
    }
    return flat.length === 1 ? flat[0]! : flat;
  }

  #name(base: string): string {
    let name = base;
    for (let n = 2; this.#names.has(name); n++) name = `${base}_${n}`;
    this.#names.add(name);
    return name;
  }
}

/** An optional field's type: a union whose first member is null (Avro: a default matches the first member). */
function nullFirst(type: Avro): Avro {
  const members = Array.isArray(type) ? type : [type];
  return members.includes('null') ? ['null', ...members.filter((m) => m !== 'null')] : ['null', ...members];
}

/** A JSON Schema default Avro can carry as is: a primitive of the field's primitive type. */
function primitiveDefault(type: Avro, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'long':
      return Number.isSafeInteger(value);
    case 'double':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return false;
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
