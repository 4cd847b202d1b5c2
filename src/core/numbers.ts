import { arg } from './arguments.ts';

/** `value` when it is a positive safe integer; otherwise an `InvalidArgumentError` naming the option. */
export const positiveInt = arg.positiveInt;

/** `value` when it is a finite number >= 0; otherwise an `InvalidArgumentError` naming the option. */
export const nonNegative = arg.nonNegative;
