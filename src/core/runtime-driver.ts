import type { EventStoreDriver, EventTypeDescription } from './driver.ts';
import { DriverError, EventfoldError, StoreClosedError } from './errors.ts';

/**
 * Lifecycle for any driver, written once: open on first use (concurrent first calls share one
 * open), refuse use after close, and turn untyped backend failures into `DriverError`s.
 */
export class RuntimeDriver {
  readonly driver: EventStoreDriver;
  /** The store's event types, asked for only when the driver has `registerEventTypes`. */
  readonly #eventTypes: (() => readonly EventTypeDescription[]) | undefined;
  #opening: Promise<void> | undefined;
  #closed = false;
  #inFlight = new Set<Promise<unknown>>();

  constructor(driver: EventStoreDriver, eventTypes?: () => readonly EventTypeDescription[]) {
    this.driver = driver;
    this.#eventTypes = eventTypes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Opens the driver unless it is open (for a backend extra, such as the Kafka projector, that then talks to the backend itself). */
  async open(): Promise<void> {
    await this.use(async () => undefined);
  }

  /** Runs `fn` against the open driver. */
  async use<T>(fn: (driver: EventStoreDriver) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreClosedError();
    this.#opening ??= this.#open().catch((error: unknown) => {
      this.#opening = undefined;
      throw wrap(this.driver.name, error, 'open failed');
    });
    await this.#opening;
    if (this.#closed) throw new StoreClosedError();
    const run = fn(this.driver).catch((error: unknown) => {
      throw wrap(this.driver.name, error, 'operation failed');
    });
    this.#inFlight.add(run);
    try {
      return await run;
    } finally {
      this.#inFlight.delete(run);
    }
  }

  /** Opens the driver and tells it the event types; a refusal closes it again, so the next use opens afresh. */
  async #open(): Promise<void> {
    await this.driver.open();
    if (!this.driver.registerEventTypes || !this.#eventTypes) return;
    try {
      await this.driver.registerEventTypes(this.#eventTypes());
    } catch (error) {
      await this.driver.close().catch(() => undefined);
      throw error;
    }
  }

  /** Waits for running operations, runs `beforeDriverClose`, then closes the driver. Idempotent. */
  async close(beforeDriverClose?: () => Promise<void>): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    await beforeDriverClose?.();
    if (this.#opening) {
      await this.#opening.catch(() => undefined);
      await this.driver.close();
    }
  }
}

function wrap(backend: string, error: unknown, what: string): Error {
  if (error instanceof EventfoldError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DriverError(backend, `${what}: ${message}`, error);
}
