import type { KafkaDriverOptions } from '../backends/kafka/kafka-driver.ts';
import { InvalidConnectionUrlError } from '../core/errors.ts';
import type { ConnectionUrl } from './connection-url.ts';
import { readParams } from './params.ts';

export const KAFKA_PARAMS = {
  prefix: 'string',
  partitions: 'positiveInt',
  categories: 'list',
  replicationFactor: 'positiveInt',
  transactionTimeoutMs: 'positiveInt',
  blockMs: 'nonNegativeInt',
  indexCheckpointEvents: 'positiveInt',
  routing: 'boolean',
  sasl: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'],
  tls: 'boolean',
} as const;

/**
 * `kafka://[user[:password]@]b1:9092,b2:9092?prefix=shop&partitions=8&categories=order,customer`;
 * `kafkas://` (or `tls=true`) for TLS. Credentials (from the URL, else `EVENTFOLD_KAFKA_USERNAME`
 * and `EVENTFOLD_KAFKA_PASSWORD` of `env`) authenticate with SASL, `sasl=` the mechanism
 * (default SCRAM-SHA-512).
 */
export function kafkaOptions(url: ConnectionUrl, env: Readonly<Record<string, string | undefined>>): KafkaDriverOptions {
  const params = readParams(url, 'kafka', KAFKA_PARAMS);
  if (url.path !== '')
    throw new InvalidConnectionUrlError(`kafka URL ${url.redacted} has a path (/${url.path}); put options in ?parameters`);
  const brokers = (url.hosts.length === 0 ? ['127.0.0.1:9092'] : url.hosts).map((h) => (/:\d+$/.test(h) ? h : `${h}:9092`));
  const username = url.username ?? nonEmpty(env['EVENTFOLD_KAFKA_USERNAME']);
  const password = url.password ?? nonEmpty(env['EVENTFOLD_KAFKA_PASSWORD']);
  if (params.sasl !== undefined && username === undefined) {
    throw new InvalidConnectionUrlError(`kafka URL ${url.redacted} asks for sasl=${params.sasl} but gives no user name`, 'sasl');
  }
  const tls = params.tls ?? url.scheme === 'kafkas';
  const clientOptions = {
    ...(tls ? { tls: {} } : {}),
    ...(username === undefined ? {} : { sasl: { mechanism: params.sasl ?? 'SCRAM-SHA-512', username, password: password ?? '' } }),
  };
  return {
    brokers,
    ...(params.prefix === undefined ? {} : { prefix: params.prefix }),
    ...(params.partitions === undefined ? {} : { partitions: params.partitions }),
    ...(params.categories === undefined ? {} : { categories: params.categories }),
    ...(params.replicationFactor === undefined ? {} : { replicationFactor: params.replicationFactor }),
    ...(params.transactionTimeoutMs === undefined ? {} : { transactionTimeoutMs: params.transactionTimeoutMs }),
    ...(params.blockMs === undefined ? {} : { blockMs: params.blockMs }),
    ...(params.indexCheckpointEvents === undefined ? {} : { indexCheckpointEvents: params.indexCheckpointEvents }),
    ...(params.routing === false ? { routing: false as const } : {}),
    ...(Object.keys(clientOptions).length === 0 ? {} : { clientOptions }),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
