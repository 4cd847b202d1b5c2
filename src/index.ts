// The public API of `eventfold`. Backends live in their own subpath exports
// (`eventfold/sqlite`, …); this entry never imports a backend's client.
export { createEventStore, EventStore } from './core/event-store.ts';
export type { AppendOptions, AppendOutcome, EventStoreOptions, ReadStreamOptions } from './core/event-store.ts';
export type { TelemetryOptions, TelemetrySetting } from './core/telemetry-options.ts';
export { defineEvent } from './core/event-type.ts';
export type { AnyEventType, Event, EventMetadata, EventOf, EventType, EventTypeOptions, Upcaster } from './core/event-type.ts';
export type { EventInput, RecordedEvent, RecordedFields } from './core/recorded-event.ts';
export { AggregateRepository, defineAggregate } from './core/aggregate.ts';
export type {
  AggregateDefinition,
  Decider,
  HandleOptions,
  HandleResult,
  LoadedAggregate,
  SnapshotOptions,
} from './core/aggregate.ts';
export { anyOf, everyInterval, everyNEvents, whenStateExceeds } from './core/snapshot-policy.ts';
export type { SnapshotContext, SnapshotPolicy } from './core/snapshot-policy.ts';
export { SubscriptionPositions, Subscription } from './core/subscription.ts';
export type { PositionStore, SubscribeOptions } from './core/subscription.ts';
export { DeadLetters, GroupConsumer } from './core/group-consumer.ts';
export type { ConsumeOptions } from './core/group-consumer.ts';
export type { ExpectedVersion } from './core/expected-version.ts';
export { matchesExpectedVersion } from './core/expected-version.ts';
export { assertStreamName, categoryOf } from './core/stream-name.ts';
export { partitionOf } from './core/partition.ts';
export type { Codec } from './core/codec.ts';
export { jsonCodec } from './core/json-codec.ts';
export type {
  AppendLimits,
  AppendRequest,
  AppendResult,
  ConditionalAppendDriver,
  ConsumerGroupDriver,
  ConsumerGroupPartition,
  DeadLetter,
  Delivery,
  DriverBase,
  DriverCapabilities,
  EncodedEvent,
  EventStoreDriver,
  EventTypeDescription,
  IndexCheckpointKind,
  IndexCheckpoints,
  PartitionLease,
  PartitionOwnerDriver,
  PartitionRange,
  Position,
  StoredEvent,
  StoredSnapshot,
  VersionRange,
} from './core/driver.ts';
export { supportsAppendMany } from './core/stream-access.ts';
export {
  AppendTooLargeError,
  BackendUnavailableError,
  CommandRejectedError,
  ConcurrencyError,
  DriverError,
  DuplicateEventIdError,
  EventDecodeError,
  EventfoldError,
  EventTooLargeError,
  ExpectedVersionConflictError,
  InvalidArgumentError,
  InvalidConnectionUrlError,
  InvalidEventError,
  InvalidStreamNameError,
  PartitionFencedError,
  SchemaIncompatibleError,
  StoreClosedError,
  UnknownEventTypeError,
} from './core/errors.ts';
export type { EventfoldErrorCode, ValidationIssue } from './core/errors.ts';
export { openDriver, openStore } from './connect/open-driver.ts';
export type { OpenDriverOptions } from './connect/open-driver.ts';
