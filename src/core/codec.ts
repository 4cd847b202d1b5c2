/**
 * A codec turns an event payload into bytes and back. The store records the codec's name with
 * every event, so a store opened with another codec fails loudly on read instead of guessing.
 * A codec throws on bad input; the store wraps that in an `EventDecodeError` naming the event.
 */
export interface Codec {
  readonly name: string;
  encode(event: { readonly type: string; readonly schemaVersion: number; readonly data: unknown }): Uint8Array;
  decode(event: { readonly type: string; readonly schemaVersion: number; readonly data: Uint8Array }): unknown;
}
