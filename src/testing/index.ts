// The public API of `eventfold/testing`: given/when/then specs for deciders and aggregates, and
// the conformance suites for a driver of your own. It depends on no test runner: specs throw
// node:assert's AssertionError, and the suites take the runner's `describe`/`it`.
export { deciderSpec } from './decider-spec.ts';
export type { DeciderGiven, DeciderOutcome, DeciderSpec, DeciderWhen } from './decider-spec.ts';
export { storeSpec } from './store-spec.ts';
export type { StoreGiven, StoreOutcome, StoreSpec, StoreWhen } from './store-spec.ts';
export type { ErrorClass, SpecEventLike } from './spec-report.ts';
export type { TestRunner } from './runner.ts';
export { runConformance } from './conformance/suite.ts';
export type { ConformanceOptions, ConformanceTarget } from './conformance/suite.ts';
export type { OpenOptions, OpenStore } from './conformance/open-store.ts';
export { runConsumerGroupConformance } from './conformance/consumer-groups.ts';
export type { ConsumerGroupTarget, GroupEvent, GroupWorker } from './conformance/consumer-groups.ts';
