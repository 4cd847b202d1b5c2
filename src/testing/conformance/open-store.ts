// What the conformance suite's parts get to open a store on the backend under test.
import type { AnyEventType, Codec, EventOf, EventStore } from '../../index.ts';
import type { accountEvents } from './fixtures.ts';

export interface OpenOptions<Types extends readonly AnyEventType[]> {
  readonly events?: Types;
  readonly codec?: Codec;
  readonly clock?: () => number;
  readonly maxEventBytes?: number;
}

export type OpenStore = <const Types extends readonly AnyEventType[] = typeof accountEvents>(
  storeName: string,
  options?: OpenOptions<Types>,
) => Promise<EventStore<EventOf<Types>>>;
