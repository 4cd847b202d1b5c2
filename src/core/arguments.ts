import { describe } from './describe.ts';
import { InvalidArgumentError } from './errors.ts';

export { describe };

/**
 * Argument checks for the public entry points: each returns the value with its type narrowed,
 * or throws an `InvalidArgumentError` that names the argument and says what it got. A check
 * reads the value once; errors thrown by the caller's own getters or proxies pass through.
 */
export const arg = {
  string(value: unknown, name: string): string {
    if (typeof value !== 'string') throw invalid(name, 'a string', value);
    return value;
  },

  /** A plain options object; `undefined` stands for `{}`. */
  options<T extends object>(value: T | undefined, name: string): T | Partial<T> {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(name, 'an options object', value);
    return value;
  },

  object<T extends object>(value: T, name: string): T {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(name, 'an object', value);
    return value;
  },

  array<T>(value: readonly T[], name: string): readonly T[] {
    if (!Array.isArray(value)) throw invalid(name, 'an array', value);
    return value;
  },

  /** An array whose every element passes `check`, which is given the name `name[i]`. */
  arrayOf<T>(value: readonly T[], name: string, check: (element: T, name: string) => unknown): readonly T[] {
    if (!Array.isArray(value)) throw invalid(name, 'an array', value);
    for (let i = 0; i < value.length; i++) check(value[i] as T, `${name}[${i}]`);
    return value;
  },

  function<T extends (...args: never[]) => unknown>(value: T, name: string): T {
    if (typeof value !== 'function') throw invalid(name, 'a function', value);
    return value;
  },

  boolean(value: boolean, name: string): boolean {
    if (typeof value !== 'boolean') throw invalid(name, 'true or false', value);
    return value;
  },

  /** A valid `Date` (not an Invalid Date). */
  date(value: Date, name: string): Date {
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(name, 'a valid Date', value);
    return value;
  },

  positiveInt(value: number, name: string): number {
    if (!Number.isSafeInteger(value) || value < 1) throw invalid(name, 'a positive integer', value);
    return value;
  },

  nonNegativeInt(value: number, name: string): number {
    if (!Number.isSafeInteger(value) || value < 0) throw invalid(name, 'a non-negative integer', value);
    return value;
  },

  /** A finite number > 0. */
  positive(value: number, name: string): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalid(name, 'a positive number', value);
    return value;
  },

  /** A finite number >= 0 (durations in ms). */
  nonNegative(value: number, name: string): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalid(name, 'a non-negative number', value);
    return value;
  },

  oneOf<const T extends string>(value: T, name: string, allowed: readonly T[]): T {
    if (!allowed.includes(value)) throw invalid(name, allowed.map((a) => `'${a}'`).join(' or '), value);
    return value;
  },

  signal(value: AbortSignal, name: string): AbortSignal {
    if (!(value instanceof AbortSignal)) throw invalid(name, 'an AbortSignal', value);
    return value;
  },

  /** Runs `check` unless the value is `undefined` (an optional argument or option). */
  optional<T, R>(value: T | undefined, check: (value: T) => R): R | undefined {
    return value === undefined ? undefined : check(value);
  },
};

function invalid(name: string, expected: string, got: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${name} must be ${expected}, got ${describe(got)}`);
}
