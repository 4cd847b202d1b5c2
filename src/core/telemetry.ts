// OpenTelemetry traces and metrics, for every backend, in one place. @opentelemetry/api is an
// optional peer dependency: loaded on demand, and only its types are imported here (erased at
// run time). The exported class keeps every api object in private fields, so the emitted .d.ts
// never names the package. Design, names and attributes: docs/architecture/telemetry.md.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Otel from '@opentelemetry/api';
import { EventfoldError, InvalidArgumentError } from './errors.ts';
import type { TelemetryOptions, TelemetrySetting } from './telemetry-options.ts';

type Api = typeof Otel;
export type AttributeValue = string | number | boolean | readonly string[];
export type Attributes = Readonly<Record<string, AttributeValue | undefined>>;
export type Outcome = 'ok' | 'already_stored' | 'conflict' | 'rejected' | 'error';
export type SpanName =
  | 'eventfold.append'
  | 'eventfold.append_many'
  | 'eventfold.aggregate.load'
  | 'eventfold.aggregate.handle'
  | 'eventfold.subscription.batch'
  | 'eventfold.consumer_group.batch'
  | 'eventfold.projection.batch';

/** Attribute names: OpenTelemetry semantic conventions where one fits, `eventfold.*` otherwise. */
export const ATTR = {
  backend: 'eventfold.backend',
  dbSystem: 'db.system.name',
  messagingSystem: 'messaging.system',
  outcome: 'eventfold.outcome',
  errorType: 'error.type',
  streamId: 'eventfold.stream.id',
  streamCount: 'eventfold.stream.count',
  partition: 'messaging.destination.partition.id',
  eventCount: 'messaging.batch.message_count',
  operationType: 'messaging.operation.type',
  group: 'messaging.consumer.group.name',
  consumer: 'messaging.client.id',
  expectedVersion: 'eventfold.expected_version',
  aggregate: 'eventfold.aggregate.name',
  aggregateVersion: 'eventfold.aggregate.version',
  eventsFolded: 'eventfold.aggregate.events_folded',
  snapshotVersion: 'eventfold.aggregate.snapshot_version',
  attempts: 'eventfold.command.attempts',
  commandEvents: 'eventfold.command.event_count',
  deadLettered: 'eventfold.dead_lettered',
  projection: 'eventfold.projection.name',
  projectionVersion: 'eventfold.projection.version',
  projectionMode: 'eventfold.projection.mode',
  projectionTarget: 'eventfold.projection.target',
  source: 'eventfold.source',
  operation: 'eventfold.operation',
} as const;

/** What a running operation adds to its span (nothing when telemetry is off). */
export interface SpanHandle {
  setAttribute(key: string, value: AttributeValue): unknown;
}

/** A span begun by `begin`: the code it covers runs through `run`; `end` closes it. */
export interface OpenSpan extends SpanHandle {
  run<T>(fn: () => Promise<T>): Promise<T>;
  end(error?: unknown, outcome?: Outcome): void;
}

export interface LagReading {
  readonly attributes: Attributes;
  readonly lag: number;
}

const NOOP_SPAN: OpenSpan = { setAttribute: () => undefined, run: (fn) => fn(), end: () => undefined };

// Appends on an embedded store take tens of microseconds: the default buckets (0, 5, 10, … ms
// read as seconds) would put all of them in the first one.
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** System names of the semantic conventions (db.system.name / messaging.system) per driver name. */
const SYSTEMS: Record<string, { key: string; value: string }> = {
  sqlite: { key: ATTR.dbSystem, value: 'sqlite' },
  postgres: { key: ATTR.dbSystem, value: 'postgresql' },
  redis: { key: ATTR.dbSystem, value: 'redis' },
  kafka: { key: ATTR.messagingSystem, value: 'kafka' },
  pulsar: { key: ATTR.messagingSystem, value: 'pulsar' },
};

let api: Api | null | undefined;

/** @opentelemetry/api, or undefined when it is not installed. Loaded once, synchronously: a store must trace its first append. */
function loadApi(): Api | undefined {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as Api;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'MODULE_NOT_FOUND') throw error;
      api = null;
    }
  }
  return api ?? undefined;
}

let version: string | undefined;
function packageVersion(): string {
  // package.json is two levels up from both src/core/ and dist/core/.
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

interface Instruments {
  readonly appendDuration: Otel.Histogram;
  readonly appended: Otel.Counter;
  readonly deadLetters: Otel.Counter;
  readonly lag: Record<'subscription' | 'consumer_group', Otel.ObservableGauge>;
}

/**
 * A provider that is the api's no-op (nothing registered): the global proxy without a delegate,
 * or the no-op meter provider. Told by class name too, as another copy of the api (its ESM or
 * CJS build) has its own no-op objects.
 */
function isNoop(provider: object): boolean {
  const delegate = (provider as { getDelegate?: () => object }).getDelegate?.() ?? provider;
  const name = delegate.constructor?.name;
  return name === 'NoopTracerProvider' || name === 'NoopMeterProvider';
}

/**
 * A store's telemetry. `Telemetry.off` (or one made while @opentelemetry/api is absent) does
 * nothing and costs one branch. On the global providers, each call first checks whether an SDK
 * is registered (two lookups) and does nothing more until one is; then it binds to it for good.
 */
export class Telemetry {
  static readonly off = new Telemetry(undefined, {}, '');
  readonly enabled: boolean;
  readonly #api: Api | undefined;
  readonly #options: TelemetryOptions;
  #tracer: Otel.Tracer | undefined;
  readonly #base: Attributes;
  #instruments: Instruments | undefined;
  readonly #lagSources = { subscription: new Set<() => Promise<LagReading[]>>(), consumer_group: new Set<() => Promise<LagReading[]>>() };

  private constructor(otel: Api | undefined, options: TelemetryOptions, backend: string) {
    this.enabled = otel !== undefined;
    this.#api = otel;
    this.#options = options;
    const system = SYSTEMS[backend];
    this.#base = { [ATTR.backend]: backend, ...(system ? { [system.key]: system.value } : {}) };
  }

  /** Whether spans or metrics would be recorded now (an SDK is registered, or providers were passed). */
  get active(): boolean {
    return this.#api !== undefined && (this.#currentTracer() !== undefined || this.#metrics() !== undefined);
  }

  #currentTracer(): Otel.Tracer | undefined {
    if (this.#tracer || !this.#api) return this.#tracer;
    const provider = (this.#options.tracerProvider as Otel.TracerProvider | undefined) ?? this.#api.trace.getTracerProvider();
    if (this.#options.tracerProvider === undefined && isNoop(provider)) return undefined;
    this.#tracer = provider.getTracer('eventfold', packageVersion());
    return this.#tracer;
  }

  /** The telemetry a store's `telemetry` option asks for. */
  static of(setting: TelemetrySetting | undefined, backend: string): Telemetry {
    if (setting === false) return Telemetry.off;
    if (setting !== undefined && setting !== true) {
      if (typeof setting !== 'object' || setting === null) {
        throw new InvalidArgumentError('telemetry must be true, false or { tracerProvider?, meterProvider? }');
      }
      for (const [key, method] of [
        ['tracerProvider', 'getTracer'],
        ['meterProvider', 'getMeter'],
      ] as const) {
        const provider = (setting as Record<string, unknown>)[key];
        if (provider !== undefined && typeof (provider as Record<string, unknown> | null)?.[method] !== 'function') {
          throw new InvalidArgumentError(`telemetry.${key} must be an OpenTelemetry ${key} (with ${method}())`);
        }
      }
    }
    const otel = loadApi();
    if (!otel) {
      if (setting === undefined) return Telemetry.off;
      throw new InvalidArgumentError('telemetry needs the @opentelemetry/api package: npm install @opentelemetry/api');
    }
    return new Telemetry(otel, setting === undefined || setting === true ? {} : setting, backend);
  }

  /** Runs `fn` in a span (the parent of spans made inside it); ERROR status, `error.type` and the exception when it throws. */
  async span<T>(
    name: SpanName,
    kind: 'internal' | 'consumer',
    attributes: Attributes,
    fn: (span: SpanHandle) => Promise<T>,
    outcome?: (result: T) => Outcome,
  ): Promise<T> {
    if (!this.enabled) return fn(NOOP_SPAN);
    const span = this.begin(name, kind, attributes);
    if (span === NOOP_SPAN) return fn(span);
    let result: T;
    try {
      result = await span.run(() => fn(span));
    } catch (error) {
      span.end(error);
      throw error;
    }
    span.end(undefined, outcome?.(result) ?? 'ok');
    return result;
  }

  /** A span whose work is not one function (the Kafka projector opens it once a batch has events). */
  begin(name: SpanName, kind: 'internal' | 'consumer', attributes: Attributes, startTime?: number): OpenSpan {
    const otel = this.#api;
    const tracer = this.#currentTracer();
    if (!otel || !tracer) return NOOP_SPAN;
    const span = tracer.startSpan(name, {
      kind: kind === 'consumer' ? otel.SpanKind.CONSUMER : otel.SpanKind.INTERNAL,
      attributes: { ...this.#base, ...attributes } as Otel.Attributes,
      ...(startTime === undefined ? {} : { startTime }),
    });
    // No SDK (the api's no-op tracer) and no trace to carry on: nothing to record or propagate.
    if (!span.isRecording() && !otel.trace.isSpanContextValid(span.spanContext())) return NOOP_SPAN;
    const ctx = otel.trace.setSpan(otel.context.active(), span);
    return {
      setAttribute: (key, value) => span.setAttribute(key, value as Otel.AttributeValue),
      run: (fn) => otel.context.with(ctx, fn),
      end: (error, outcome) => {
        if (error === undefined) span.setAttribute(ATTR.outcome, outcome ?? 'ok');
        else {
          span.setAttributes({ [ATTR.outcome]: outcomeOf(error), [ATTR.errorType]: errorType(error) });
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: otel.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        }
        span.end();
      },
    };
  }

  /** Runs an `append` or `appendMany` and records its duration and the events it stored (`stored` of its result). */
  async timeAppend<T>(operation: 'append' | 'append_many', fn: () => Promise<T>, stored: (result: T) => number): Promise<T> {
    const started = performance.now();
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      this.#recordAppend(operation, started, 0, error);
      throw error;
    }
    this.#recordAppend(operation, started, stored(result), undefined);
    return result;
  }

  #recordAppend(operation: 'append' | 'append_many', started: number, events: number, error: unknown): void {
    const m = this.#metrics();
    if (!m) return;
    const outcome = error === undefined ? (events === 0 ? 'already_stored' : 'ok') : outcomeOf(error);
    m.appendDuration.record((performance.now() - started) / 1000, {
      ...this.#base,
      [ATTR.operation]: operation,
      [ATTR.outcome]: outcome,
      ...(error === undefined ? {} : { [ATTR.errorType]: errorType(error) }),
    } as Otel.Attributes);
    if (events > 0) m.appended.add(events, this.#base as Otel.Attributes);
  }

  deadLettered(group: string, source: 'consumer_group' | 'kafka_projector' | 'pulsar_projector', count = 1): void {
    this.#metrics()?.deadLetters.add(count, { ...this.#base, [ATTR.group]: group, [ATTR.source]: source } as Otel.Attributes);
  }

  /**
   * Reports a lag gauge while the subscription or consumer runs: `read` is called only when a
   * metric reader collects (never without an SDK, which may be registered later). Returns the
   * unregister function.
   */
  observeLag(kind: 'subscription' | 'consumer_group', read: () => Promise<LagReading[]>): () => void {
    if (!this.enabled) return () => undefined;
    this.#lagSources[kind].add(read);
    return () => this.#lagSources[kind].delete(read);
  }

  /** Instruments, made once a meter provider is there (the api has no proxy meter provider to bind to early). */
  #metrics(): Instruments | undefined {
    const otel = this.#api;
    if (!otel) return undefined;
    if (this.#instruments) return this.#instruments;
    const provider = (this.#options.meterProvider as Otel.MeterProvider | undefined) ?? otel.metrics.getMeterProvider();
    if (this.#options.meterProvider === undefined && isNoop(provider)) return undefined;
    const meter = provider.getMeter('eventfold', packageVersion());
    const lag = (kind: 'subscription' | 'consumer_group'): Otel.ObservableGauge => {
      const gauge = meter.createObservableGauge(`eventfold.${kind}.lag`, {
        description:
          kind === 'subscription'
            ? 'Events stored after the position a running subscription has handled, per group and partition'
            : 'Events stored after the last one a running group consumer acknowledged, per group, consumer and partition',
        unit: '{event}',
      });
      gauge.addCallback(async (result) => {
        const readings = await Promise.all([...this.#lagSources[kind]].map((read) => read().catch(() => [])));
        for (const r of readings.flat()) result.observe(r.lag, { ...this.#base, ...r.attributes } as Otel.Attributes);
      });
      return gauge;
    };
    this.#instruments = {
      appendDuration: meter.createHistogram('eventfold.append.duration', {
        description: 'Duration of append and appendMany calls',
        unit: 's',
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      }),
      appended: meter.createCounter('eventfold.events.appended', { description: 'Events stored by appends', unit: '{event}' }),
      deadLetters: meter.createCounter('eventfold.dead_letters', { description: 'Events sent to dead letters', unit: '{event}' }),
      lag: { subscription: lag('subscription'), consumer_group: lag('consumer_group') },
    };
    return this.#instruments;
  }
}

/** `eventfold.outcome` of a failure. */
function outcomeOf(error: unknown): Outcome {
  if (error instanceof EventfoldError && error.code === 'VERSION_CONFLICT') return 'conflict';
  if (error instanceof EventfoldError && error.code === 'COMMAND_REJECTED') return 'rejected';
  return 'error';
}

/** `error.type`: eventfold's stable error code, else the error's class (`_OTHER` for a thrown non-error, as the conventions say). */
function errorType(error: unknown): string {
  if (error instanceof EventfoldError) return error.code;
  if (error instanceof Error) return error.constructor.name;
  return '_OTHER';
}
