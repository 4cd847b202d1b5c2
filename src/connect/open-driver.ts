import type { EventStoreDriver } from '../core/driver.ts';
import { BackendUnavailableError, InvalidConnectionUrlError } from '../core/errors.ts';
import type { AnyEventType, EventOf } from '../core/event-type.ts';
import { createEventStore, type EventStore, type EventStoreOptions } from '../core/event-store.ts';
import { BACKENDS, backendOf, type BackendEntry, type Env } from './backends.ts';
import { parseConnectionUrl, scrubError } from './connection-url.ts';

export interface OpenDriverOptions {
  /** Where credentials not in the URL come from (`EVENTFOLD_REDIS_PASSWORD`, …). Default `process.env`. */
  readonly env?: Env;
}

/**
 * A driver from a connection URL, its backend module loaded only now:
 *
 *   sqlite:./events.db   sqlite::memory:   redis://user:pass@host:6379/0?prefix=shop&partitions=16
 *   kafka://b1:9092,b2:9092?prefix=shop&partitions=8&categories=order,customer
 *   postgres://app@db:5432/shop?schema=billing   pulsar://broker:6650?namespace=orders
 *
 * A malformed URL or an unknown parameter is an `InvalidConnectionUrlError` naming it; a
 * backend whose client package is not installed, or that this version lacks, is a
 * `BackendUnavailableError`. Messages never show the password.
 */
export async function openDriver(url: string, options?: OpenDriverOptions): Promise<EventStoreDriver> {
  const parsed = parseConnectionUrl(url);
  const backend = backendOf(parsed.scheme);
  if (!backend) {
    const schemes = Object.values(BACKENDS).flatMap((b: BackendEntry) => b.schemes);
    throw new InvalidConnectionUrlError(
      `connection URL ${parsed.redacted} has an unknown scheme "${parsed.scheme}:"; known: ${schemes.join(', ')}`,
    );
  }
  const secrets = parsed.password === undefined ? [] : [parsed.password];
  const env = options?.env ?? process.env;
  const driver = await loadBackend(backend.name, backend.entry, (create) => create(parsed, env), secrets);
  // Errors of a failed connect may quote what the client was given: keep the password out.
  const envSecrets = Object.entries(env)
    .filter(([k, v]) => /^EVENTFOLD_.*(PASSWORD|TOKEN)$/.test(k) && v)
    .map(([, v]) => v!);
  const open = driver.open.bind(driver);
  driver.open = async () => {
    try {
      await open();
    } catch (error) {
      throw scrubError(error, [...secrets, ...envSecrets]);
    }
  };
  return driver;
}

/** Runs the entry's `create`, turning a missing peer package into a `BackendUnavailableError`. */
export async function loadBackend(
  name: string,
  entry: BackendEntry,
  run: (create: NonNullable<BackendEntry['create']>) => Promise<EventStoreDriver>,
  secrets: readonly string[] = [],
): Promise<EventStoreDriver> {
  if (!entry.create) throw new BackendUnavailableError(name, 'not-in-this-version');
  try {
    return await run(entry.create);
  } catch (error) {
    if (entry.peer !== undefined && isMissingPackage(error, entry.peer)) {
      throw new BackendUnavailableError(name, { missingPackage: entry.peer, cause: error });
    }
    throw scrubError(error, secrets);
  }
}

function isMissingPackage(error: unknown, pkg: string): boolean {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' &&
    (error.message.includes(`'${pkg}'`) || error.message.includes(`"${pkg}"`))
  );
}

/** `createEventStore` over `openDriver(url)`: `await openStore('sqlite:./events.db', { events: [Deposited] })`. */
export async function openStore<const Types extends readonly AnyEventType[]>(
  url: string,
  options: Omit<EventStoreOptions<Types>, 'driver'> & OpenDriverOptions,
): Promise<EventStore<EventOf<Types>>> {
  const { env, ...storeOptions } = options;
  const driver = await openDriver(url, env === undefined ? undefined : { env });
  return createEventStore({ ...storeOptions, driver } as EventStoreOptions<Types>);
}
