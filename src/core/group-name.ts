import { describe } from './describe.ts';
import { InvalidArgumentError } from './errors.ts';

/** Subscription groups, native consumer groups and consumers: names that become keys and group ids. */
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

export function assertGroupName(group: unknown): asserts group is string {
  if (typeof group !== 'string' || !GROUP_NAME.test(group) || group.includes('..')) {
    throw new InvalidArgumentError(`group name ${describe(group)} must be 1-200 ASCII letters, digits, "_", "-" or "."`);
  }
}
