import { InvalidArgumentError } from './errors.ts';

/** `value` when it is a positive safe integer; otherwise an `InvalidArgumentError` naming the option. */
export function positiveInt(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return value;
}

/** `value` when it is a finite number >= 0; otherwise an `InvalidArgumentError` naming the option. */
export function nonNegative(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
  return value;
}
