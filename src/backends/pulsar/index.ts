// `eventfold/pulsar`: Apache Pulsar over its binary protocol (our own client, client/; no dependency).
import { arg } from '../../core/arguments.ts';
import { PulsarDriver, type PulsarDriverOptions } from './pulsar-driver.ts';

export { PulsarDriver };
export type { PulsarDriverOptions };
export type { PulsarSchemaCompatibility } from './schema-registry.ts';

/** `pulsar({ serviceUrl: 'pulsar://127.0.0.1:6650', adminUrl: 'http://127.0.0.1:8080', namespace: 'orders', partitions: 8 })`; pass as `createEventStore({ driver })`. */
export function pulsar(options?: PulsarDriverOptions): PulsarDriver {
  const o = arg.options(options, 'pulsar options');
  arg.optional(o.serviceUrl, (s) => arg.string(s, 'serviceUrl'));
  arg.optional(o.adminUrl, (s) => arg.string(s, 'adminUrl'));
  arg.optional(o.tenant, (s) => arg.string(s, 'tenant'));
  arg.optional(o.namespace, (s) => arg.string(s, 'namespace'));
  arg.optional(o.prefix, (s) => arg.string(s, 'prefix'));
  arg.optional(o.partitions, (n) => arg.positiveInt(n, 'partitions'));
  if (o.token !== undefined && typeof o.token !== 'function') arg.string(o.token, 'token');
  arg.optional(o.tls, (t) => arg.object(t, 'tls'));
  arg.optional(o.operationTimeoutMs, (n) => arg.positiveInt(n, 'operationTimeoutMs'));
  arg.optional(o.sendTimeoutMs, (n) => arg.positiveInt(n, 'sendTimeoutMs'));
  arg.optional(o.indexCheckpointEvents, (n) => arg.positiveInt(n, 'indexCheckpointEvents'));
  return new PulsarDriver(o);
}
export { pulsarProjector } from './projector/projector.ts';
export type {
  PulsarProjector,
  PulsarProjectorOptions,
  PulsarProjectorOutput,
  PulsarProjectorRecord,
} from './projector/options.ts';
