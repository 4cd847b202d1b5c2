// The suites' fixtures live in src/testing/conformance/fixtures.ts; many tests import them from here.
export * from '../../src/testing/conformance/fixtures.ts';
