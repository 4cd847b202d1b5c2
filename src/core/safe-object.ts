import { InvalidEventError } from './errors.ts';

/**
 * Rejects `__proto__` keys anywhere in a value. Such a key is harmless inside JSON.parse
 * output but becomes prototype pollution the moment a consumer spreads or merges the object,
 * so eventfold never stores one.
 */
export function assertSafeKeys(eventType: string, value: unknown, root: string): void {
  const seen = new Set<object>();
  const walk = (v: unknown, path: PropertyKey[]): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (Object.hasOwn(v, '__proto__')) {
      throw new InvalidEventError(eventType, [{ message: '"__proto__" is not allowed as a key', path: [...path, '__proto__'] }]);
    }
    for (const [k, child] of Object.entries(v)) walk(child, [...path, k]);
  };
  walk(value, [root]);
}

/** Freezes a value and everything reachable from it; events are immutable facts. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  // Typed arrays with elements cannot be frozen; they are left as they are.
  if (ArrayBuffer.isView(value)) return value;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}
