// The public side of telemetry: what `createEventStore({ telemetry })` takes. Written without
// @opentelemetry/api's types, so a user who does not install that package still type-checks
// eventfold's .d.ts files (design: docs/architecture/telemetry.md).

/**
 * Where spans and metrics go. Each provider defaults to the global one, the SDK the
 * application registered (`NodeSDK.start()`, `trace.setGlobalTracerProvider`, …). Pass the
 * `TracerProvider` / `MeterProvider` objects of @opentelemetry/api (or an SDK) to use others.
 */
export interface TelemetryOptions {
  readonly tracerProvider?: { getTracer(name: string, version?: string): unknown };
  readonly meterProvider?: { getMeter(name: string, version?: string): unknown };
}

/**
 * `createEventStore({ telemetry })`:
 * - left out: on when @opentelemetry/api is installed (a no-op until an SDK is registered), off when it is not;
 * - `false`: off, and @opentelemetry/api is never loaded;
 * - `true` or `TelemetryOptions`: on; an `InvalidArgumentError` when @opentelemetry/api is not installed.
 */
export type TelemetrySetting = boolean | TelemetryOptions;
