// The consumer-group suite lives in src/testing/conformance/ (it ships as `eventfold/testing`);
// this binds it to node:test and to this repository's worker driver module (test/support/group-driver.ts).
import { after, describe, it } from 'node:test';
import { runConsumerGroupConformance, type ConsumerGroupTarget } from '../../src/testing/conformance/consumer-groups.ts';

export {
  appendMany,
  assertUndecodableLetter,
  groupEvents,
  oneDeadLetter,
  until,
  type GroupEvent,
} from '../../src/testing/conformance/consumer-groups.ts';

export interface RepoConsumerGroupTarget extends Omit<ConsumerGroupTarget, 'worker'> {
  /** Argument of test/support/group-driver.ts: `<backend>:<connection>` (see there). */
  readonly worker: string;
}

export function runConsumerGroupSuite(target: RepoConsumerGroupTarget): void {
  const worker = { module: new URL('../support/group-driver.ts', import.meta.url), arg: target.worker };
  runConsumerGroupConformance({ describe, it, after }, { ...target, worker });
}
