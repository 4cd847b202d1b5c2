// The OpenTelemetry SDK with in-memory exporters, for the telemetry tests: spans as finished,
// metrics as collected on demand.
import { context, type HrTime } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type DataPoint, type Histogram, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

// Parent/child across awaits needs a context manager (an SDK's NodeSDK registers this one).
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** A reader the test collects from when it wants (no export interval). */
class OnDemandReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

export interface Otel {
  readonly tracerProvider: TracerProvider;
  readonly meterProvider: MeterProvider;
  /** Finished spans, optionally of one name (after a flush: the SDK exports asynchronously). */
  spans(name?: string): Promise<ReadableSpan[]>;
  /** Data points of a metric at this moment (cumulative), [] when it has none. */
  points<T = number>(metric: string): Promise<DataPoint<T>[]>;
  reset(): void;
  shutdown(): Promise<void>;
}

export function otel(): Otel {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    tracerProvider,
    meterProvider,
    async spans(name) {
      await tracerProvider.forceFlush();
      return exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name);
    },
    async points<T>(metric: string) {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw errors[0];
      const found = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === metric);
      return found.flatMap((m) => m.dataPoints as unknown as DataPoint<T>[]);
    },
    reset: () => exporter.reset(),
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

export type HistogramPoint = DataPoint<Histogram>;

/** Whether `child` was started inside `parent`. */
export function isChildOf(child: ReadableSpan, parent: ReadableSpan): boolean {
  return child.parentSpanContext?.spanId === parent.spanContext().spanId && child.spanContext().traceId === parent.spanContext().traceId;
}

export function ms(time: HrTime): number {
  return time[0] * 1000 + time[1] / 1e6;
}
