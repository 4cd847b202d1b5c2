import type { Codec } from '../core/codec.ts';
import { parseJson } from '../core/event-codec.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * UTF-8 JSON. Payloads must be JSON-shaped (use ISO strings for dates). Decoding refuses a
 * `__proto__` key rather than hand a polluting object to user code.
 */
export function jsonCodec(): Codec {
  return {
    name: 'json',
    encode: ({ data }) => encoder.encode(JSON.stringify(data)),
    decode: ({ data }) => parseJson(decoder.decode(data)),
  };
}
