import type { Codec } from './codec.ts';
import { InvalidEventError } from './errors.ts';
import { jsonValueIssue } from './payload-shape.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * UTF-8 JSON. A payload must be a JSON value, so that it reads back equal: anything
 * JSON.stringify would change (NaN, undefined, a Date, a Map, a class instance, a hole…) is
 * refused with an `InvalidEventError` naming its path; an `undefined` property counts as
 * absent. Decoding refuses a `__proto__` key rather than hand a polluting object to user code.
 */
export function jsonCodec(): Codec {
  return {
    name: 'json',
    encode: ({ type, data }) => {
      const issue = jsonValueIssue(data, 'data');
      if (issue) throw new InvalidEventError(type, [issue]);
      return encoder.encode(JSON.stringify(data));
    },
    decode: ({ data }) => parseJson(decoder.decode(data)),
  };
}

/**
 * JSON.parse that refuses `__proto__` keys. A reviver costs several times a plain parse, so
 * it runs only when the text could spell the key: literally, or through a `\u` escape.
 */
export function parseJson(text: string): unknown {
  if (!text.includes('__proto__') && !text.includes('\\u')) return JSON.parse(text);
  return JSON.parse(text, (key, value: unknown) => {
    if (key === '__proto__') throw new Error('"__proto__" key in stored JSON');
    return value;
  });
}
