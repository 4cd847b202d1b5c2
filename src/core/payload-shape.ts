import type { ValidationIssue } from './errors.ts';

/**
 * Deepest nesting of objects and arrays an event payload may have (the payload itself is
 * level 1). Checked before anything recurses over the payload — schema, freeze, codec — so a
 * hostile payload gets an `InvalidEventError` instead of a stack overflow.
 */
export const MAX_PAYLOAD_DEPTH = 256;

/** Most objects and arrays a JSON payload may write, counting a shared one once per reference. */
export const MAX_PAYLOAD_OBJECTS = 10_000_000;

/**
 * Where a payload cannot be stored as it is: a `__proto__` key (harmless inside JSON.parse
 * output, prototype pollution once a consumer spreads or merges it), a cycle, or nesting deeper
 * than `MAX_PAYLOAD_DEPTH`. Any codec's rule; `jsonValueIssue` adds JSON's own.
 */
export function payloadShapeIssue(value: unknown, root: string): ValidationIssue | undefined {
  return walk(value, root, false);
}

/**
 * Where a payload would not read back equal through JSON, if anywhere. JSON values are
 * strings, finite numbers, booleans, null, dense arrays of JSON values and plain objects
 * (prototype `Object.prototype` or null) whose values are JSON values. A property whose value
 * is `undefined` counts as absent (it reads back absent), like an optional property in
 * TypeScript; everything else (NaN, ±Infinity, bigint, undefined elsewhere, functions,
 * symbols, Dates, Maps, Sets, class instances, holes, symbol keys, cycles) is an issue.
 */
export function jsonValueIssue(value: unknown, root: string): ValidationIssue | undefined {
  return walk(value, root, true);
}

type Key = string | number;
/** An issue found below the walked value: its path innermost first (built only on failure). */
type Found = { path: Key[]; message: string };

/** Recursion is bounded by MAX_PAYLOAD_DEPTH, far inside the default stack. */
function walk(value: unknown, root: string, json: boolean): ValidationIssue | undefined {
  const found = json ? jsonIssueOf(value, 1, [], { objects: 0 }) : shapeIssueOf(value, 1, new Map(), new Set());
  return found ? { message: found.message, path: [root, ...found.path.reverse()] } : undefined;
}

const tooDeep = (): Found => ({ path: [], message: `nested deeper than ${MAX_PAYLOAD_DEPTH} levels of objects and arrays` });

/**
 * Depth, cycles and `__proto__` keys. `checked` holds, per object, the deepest level its subtree
 * was checked from: an object shared at several depths is checked again only from a deeper one
 * (at most MAX_PAYLOAD_DEPTH times), so sharing can neither hide depth nor cost exponential time.
 */
function shapeIssueOf(v: unknown, depth: number, checked: Map<object, number>, onPath: Set<object>): Found | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (onPath.has(v)) return { path: [], message: 'circular reference' };
  if ((checked.get(v) ?? 0) >= depth) return undefined;
  if (depth > MAX_PAYLOAD_DEPTH) return tooDeep();
  checked.set(v, depth);
  onPath.add(v);
  try {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const found = shapeIssueOf(v[i], depth + 1, checked, onPath);
        if (found) {
          found.path.push(i);
          return found;
        }
      }
      return undefined;
    }
    if (Object.hasOwn(v, '__proto__')) return { path: ['__proto__'], message: '"__proto__" is not allowed as a key' };
    for (const key in v) {
      const found = shapeIssueOf((v as Record<string, unknown>)[key], depth + 1, checked, onPath);
      if (found) {
        found.path.push(key);
        return found;
      }
    }
    return undefined;
  } finally {
    onPath.delete(v);
  }
}

/** JSON's rules; `ancestors[1..depth-1]` are the objects above `v`, for cycles. */
function jsonIssueOf(v: unknown, depth: number, ancestors: object[], count: { objects: number }): Found | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(v) ? undefined : { path: [], message: `${String(v)} is not representable in JSON` };
    case 'object':
      if (v === null) return undefined;
      break;
    case 'undefined':
      return { path: [], message: `undefined is not representable in JSON (use null${depth === 1 ? ' or {}' : ''})` };
    case 'bigint':
      return { path: [], message: 'a bigint is not representable in JSON (use a string)' };
    default:
      return { path: [], message: `a ${typeof v} is not representable in JSON` };
  }
  for (let d = 1; d < depth; d++) if (ancestors[d] === v) return { path: [], message: 'circular reference' };
  if (depth > MAX_PAYLOAD_DEPTH) return tooDeep();
  // JSON writes a shared object once per reference: a small graph of shared arrays can stand for
  // an astronomically large text, which JSON.stringify would try to build.
  if (++count.objects > MAX_PAYLOAD_OBJECTS) return { path: [], message: `more than ${MAX_PAYLOAD_OBJECTS} objects and arrays as JSON` };
  ancestors[depth] = v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const child: unknown = v[i];
      // Strings and finite numbers are most of a payload: no call for them.
      if (typeof child === 'string' || (typeof child === 'number' && Number.isFinite(child))) continue;
      if (child === undefined) {
        const what = i in v ? 'undefined in an array' : 'a hole in a sparse array';
        return { path: [i], message: `${what} is not representable in JSON (it reads back as null)` };
      }
      const found = jsonIssueOf(child, depth + 1, ancestors, count);
      if (found) {
        found.path.push(i);
        return found;
      }
    }
    return undefined;
  }
  const refused = nonPlainObject(v);
  if (refused) return { path: [], message: refused };
  if (Object.hasOwn(v, '__proto__')) return { path: ['__proto__'], message: '"__proto__" is not allowed as a key' };
  if (Object.getOwnPropertySymbols(v).length > 0) return { path: [], message: 'symbol keys are not representable in JSON' };
  // The prototype is Object.prototype or null, so `in` walks the own keys JSON.stringify writes.
  for (const key in v) {
    const child: unknown = (v as Record<string, unknown>)[key];
    if (typeof child === 'string' || child === undefined || (typeof child === 'number' && Number.isFinite(child))) continue;
    const found = jsonIssueOf(child, depth + 1, ancestors, count);
    if (found) {
      found.path.push(key);
      return found;
    }
  }
  return undefined;
}

/** Why an object is not a plain JSON object or array, or undefined when it is one. */
function nonPlainObject(object: object): string | undefined {
  const proto: unknown = Object.getPrototypeOf(object);
  if (proto === Object.prototype || proto === null) return undefined;
  if (object instanceof Date) return 'a Date is not representable in JSON (use an ISO string: date.toISOString())';
  if (object instanceof Map) return 'a Map is not representable in JSON (use a plain object or an array of entries)';
  if (object instanceof Set) return 'a Set is not representable in JSON (use an array)';
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    return 'binary data is not representable in JSON (use a base64 string, or the protobuf codec)';
  }
  const name = constructorName(object);
  const article = name && /^[AEIOU]/i.test(name) ? 'an' : 'a';
  return `${name ? `${article} ${name} instance` : 'an object with a custom prototype'} is not representable in JSON (use a plain object)`;
}

function constructorName(object: object): string | undefined {
  try {
    const ctor: unknown = (object as { constructor?: unknown }).constructor;
    return typeof ctor === 'function' && ctor.name ? ctor.name : undefined;
  } catch {
    return undefined;
  }
}
