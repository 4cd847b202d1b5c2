export * from './groups/consumer-groups.ts';
