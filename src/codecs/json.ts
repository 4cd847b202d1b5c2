import type { Codec } from '../core/codec.ts';
import { InvalidEventError } from '../core/errors.ts';
import { parseJson } from '../core/event-codec.ts';
import { jsonValueIssue } from '../core/payload-shape.ts';

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
