// A few Standard Schema validators for the suites' fixtures. The suites ship in the package and
// zod is only a dev dependency, so the fixtures cannot use it; these do what the fixtures need
// (like zod's objects, unknown keys are dropped) and nothing more.
import type { StandardSchemaV1 } from '@standard-schema/spec';

/** Checks one field: a message when the value is wrong, undefined when it is fine. */
type Check = (value: unknown) => string | undefined;

interface Field<T, Optional extends boolean = boolean> {
  readonly check: Check;
  readonly optional: Optional;
  /** Type only: what the field holds. */
  readonly _type?: T;
}

const field = <T>(check: Check): Field<T, false> => ({ check, optional: false });

export const positiveInt = (): Field<number, false> =>
  field((v) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? undefined : 'expected a positive integer'));

export const text = (options: { maxLength?: number; pattern?: RegExp } = {}): Field<string, false> =>
  field((v) => {
    if (typeof v !== 'string') return 'expected a string';
    if (options.maxLength !== undefined && v.length > options.maxLength) return `expected at most ${options.maxLength} characters`;
    if (options.pattern && !options.pattern.test(v)) return `expected a string matching ${options.pattern}`;
    return undefined;
  });

export const optional = <T>(inner: Field<T, false>): Field<T, true> => ({
  check: (v) => (v === undefined ? undefined : inner.check(v)),
  optional: true,
});

type Shape = Record<string, Field<unknown>>;
type Value<F> = F extends Field<infer T> ? T : never;
type Required<S extends Shape> = { [K in keyof S as S[K]['optional'] extends true ? never : K]: Value<S[K]> };
type Optional<S extends Shape> = { [K in keyof S as S[K]['optional'] extends true ? K : never]?: Value<S[K]> };
type Flatten<T> = { [K in keyof T]: T[K] };
export type ObjectOf<S extends Shape> = Flatten<Required<S> & Optional<S>>;

const schema = <T>(validate: (value: unknown) => StandardSchemaV1.Result<T>): StandardSchemaV1<T, T> => ({
  '~standard': { version: 1, vendor: 'eventfold-testing', validate },
});

/** An object with these fields; other keys are dropped. */
export function object<S extends Shape>(shape: S): StandardSchemaV1<ObjectOf<S>, ObjectOf<S>> {
  return schema<ObjectOf<S>>((value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { issues: [{ message: 'expected an object' }] };
    const input = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const issues: StandardSchemaV1.Issue[] = [];
    for (const [key, f] of Object.entries(shape)) {
      const v = Object.hasOwn(input, key) ? input[key] : undefined;
      if (v === undefined && !f.optional) {
        issues.push({ message: 'required', path: [key] });
        continue;
      }
      const message = f.check(v);
      if (message) issues.push({ message, path: [key] });
      else if (v !== undefined) out[key] = v;
    }
    return issues.length > 0 ? { issues } : { value: out as ObjectOf<S> };
  });
}

/** Any value: only the codec's own rules apply. */
export const unknown = (): StandardSchemaV1<unknown, unknown> => schema((value) => ({ value }));
