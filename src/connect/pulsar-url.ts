import type { PulsarDriverOptions } from '../backends/pulsar/pulsar-driver.ts';
import { InvalidConnectionUrlError } from '../core/errors.ts';
import type { ConnectionUrl } from './connection-url.ts';
import { readParams } from './params.ts';

export const PULSAR_PARAMS = {
  tenant: 'string',
  namespace: 'string',
  prefix: 'string',
  partitions: 'positiveInt',
  adminUrl: 'string',
  operationTimeoutMs: 'positiveInt',
  sendTimeoutMs: 'positiveInt',
  indexCheckpointEvents: 'positiveInt',
} as const;

/**
 * `pulsar://[:token@]host:6650?tenant=acme&namespace=orders&partitions=8`; `pulsar+ssl://`
 * (default port 6651) for TLS. The token (JWT) is the URL's password, else
 * `EVENTFOLD_PULSAR_TOKEN` of `env`; it authenticates the binary protocol and the admin API.
 * `adminUrl` defaults to the web service on the same host (`http://host:8080`, with TLS
 * `https://host:8443`).
 */
export function pulsarOptions(url: ConnectionUrl, env: Readonly<Record<string, string | undefined>>): PulsarDriverOptions {
  const params = readParams(url, 'pulsar', PULSAR_PARAMS);
  if (url.path !== '')
    throw new InvalidConnectionUrlError(`pulsar URL ${url.redacted} has a path (/${url.path}); put options in ?parameters`);
  if (url.hosts.length > 1)
    throw new InvalidConnectionUrlError(
      `pulsar URL ${url.redacted} names ${url.hosts.length} hosts; name one (a proxy or a broker: lookups find the rest)`,
    );
  const tls = url.scheme === 'pulsar+ssl';
  const [host, port] = splitHost(url.hosts[0] ?? '127.0.0.1', tls ? 6651 : 6650);
  const adminUrl = params.adminUrl ?? `${tls ? 'https' : 'http'}://${host}:${tls ? 8443 : 8080}`;
  if (!/^https?:\/\/[^/?#\s]+\/?$/.test(adminUrl)) {
    throw new InvalidConnectionUrlError(
      `parameter "adminUrl" of ${url.redacted} must be http(s)://host[:port], got ${JSON.stringify(adminUrl)}`,
      'adminUrl',
    );
  }
  const token = url.password ?? nonEmpty(env['EVENTFOLD_PULSAR_TOKEN']);
  return {
    serviceUrl: `${tls ? 'pulsar+ssl' : 'pulsar'}://${host}:${port}`,
    adminUrl,
    ...(tls ? { tls: {} } : {}),
    ...(token === undefined ? {} : { token }),
    ...(params.tenant === undefined ? {} : { tenant: params.tenant }),
    ...(params.namespace === undefined ? {} : { namespace: params.namespace }),
    ...(params.prefix === undefined ? {} : { prefix: params.prefix }),
    ...(params.partitions === undefined ? {} : { partitions: params.partitions }),
    ...(params.operationTimeoutMs === undefined ? {} : { operationTimeoutMs: params.operationTimeoutMs }),
    ...(params.sendTimeoutMs === undefined ? {} : { sendTimeoutMs: params.sendTimeoutMs }),
    ...(params.indexCheckpointEvents === undefined ? {} : { indexCheckpointEvents: params.indexCheckpointEvents }),
  };
}

function splitHost(hostPort: string, defaultPort: number): [string, number] {
  const match = /^(.*?)(?::(\d+))?$/.exec(hostPort)!;
  return [match[1]!, match[2] === undefined ? defaultPort : Number(match[2])];
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
