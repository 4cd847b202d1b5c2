import { InvalidArgumentError } from '../../../core/errors.ts';
import type { Kind, PartitionState } from './member.ts';

/** What a delivery's receipt says: which member handed it out, from which ownership of which partition. */
export interface Receipt {
  readonly kind: Kind;
  readonly partition: number;
  readonly offset: bigint;
  readonly consumer: string;
  readonly serial: number;
}

/** `<kind>|<store partition>|<offset>|<consumer>|<ownership serial>`; consumer names cannot contain "|". */
export function deliveryReceipt(state: PartitionState, consumer: string, offset: bigint): string {
  return `${state.kind}|${state.store}|${offset}|${consumer}|${state.serial}`;
}

export function parseReceipt(value: string): Receipt {
  const [kind, partition, offset, consumer, serial] = value.split('|');
  if ((kind !== 'e' && kind !== 'r') || partition === undefined || offset === undefined || consumer === undefined || serial === undefined) {
    throw new InvalidArgumentError(`not a kafka delivery receipt: ${JSON.stringify(value)}`);
  }
  return { kind, partition: Number(partition), offset: BigInt(offset), consumer, serial: Number(serial) };
}
