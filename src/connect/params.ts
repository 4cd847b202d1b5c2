import { InvalidConnectionUrlError } from '../core/errors.ts';
import type { ConnectionUrl } from './connection-url.ts';

/** How one query parameter of a connection URL is read. */
export type ParamKind = 'string' | 'positiveInt' | 'nonNegativeInt' | 'boolean' | 'list' | readonly string[];

export type ParamSpec = Readonly<Record<string, ParamKind>>;

type ValueOf<K extends ParamKind> = K extends 'string'
  ? string
  : K extends 'positiveInt' | 'nonNegativeInt'
    ? number
    : K extends 'boolean'
      ? boolean
      : K extends 'list'
        ? string[]
        : K extends readonly (infer V)[]
          ? V
          : never;

export type ParamValues<S extends ParamSpec> = { -readonly [K in keyof S]?: ValueOf<S[K]> };

/**
 * The URL's query parameters checked against `spec`: an unknown parameter, or a value of the
 * wrong kind, is an `InvalidConnectionUrlError` naming the parameter (and the known ones).
 */
export function readParams<const S extends ParamSpec>(url: ConnectionUrl, backend: string, spec: S): ParamValues<S> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of url.params) {
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (kind === undefined) {
      const known = Object.keys(spec);
      throw new InvalidConnectionUrlError(
        `unknown parameter "${name}" in ${backend} URL ${url.redacted}; ${known.length ? `known: ${known.join(', ')}` : 'it takes none'}`,
        name,
      );
    }
    out[name] = readValue(name, raw, kind, url);
  }
  return out as ParamValues<S>;
}

function readValue(name: string, raw: string, kind: ParamKind, url: ConnectionUrl): unknown {
  const bad = (expected: string) =>
    new InvalidConnectionUrlError(`parameter "${name}" of ${url.redacted} must be ${expected}, got ${JSON.stringify(raw)}`, name);
  if (Array.isArray(kind)) {
    const match = kind.find((k) => k.toLowerCase() === raw.toLowerCase());
    if (match === undefined) throw bad(kind.join(' or '));
    return match;
  }
  switch (kind) {
    case 'string':
      if (raw === '') throw bad('a non-empty string');
      return raw;
    case 'positiveInt':
    case 'nonNegativeInt': {
      const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(n) || (kind === 'positiveInt' && n < 1))
        throw bad(kind === 'positiveInt' ? 'a positive integer' : 'an integer >= 0');
      return n;
    }
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw bad('true or false');
    case 'list': {
      const items = raw.split(',').map((s) => s.trim());
      if (items.some((s) => s === '')) throw bad('a comma-separated list without empty items');
      return items;
    }
    default:
      throw bad('valid');
  }
}
