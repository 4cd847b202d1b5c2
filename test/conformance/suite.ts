// The conformance suite lives in src/testing/conformance/ (it ships as `eventfold/testing`);
// this binds it to node:test for the backends' conformance tests.
import { after, describe, it } from 'node:test';
import { runConformance, type ConformanceTarget } from '../../src/testing/conformance/suite.ts';

export type { ConformanceTarget } from '../../src/testing/conformance/suite.ts';

export function runConformanceSuite(target: ConformanceTarget): void {
  runConformance({ describe, it, after }, target);
}
