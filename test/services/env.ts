// Where the tests find the backends. Defaults are the loopback services that
// scripts/services starts (npm test brings them up); override with the env vars.
import { randomBytes } from 'node:crypto';

function env(name: string, fallback: string): string {
  const value = process.env[name];
  return value === undefined || value.trim() === '' ? fallback : value.trim();
}

/** Kafka bootstrap brokers, e.g. ['127.0.0.1:9092']. */
export const KAFKA_BROKERS: string[] = env('EVENTFOLD_KAFKA_BROKERS', '127.0.0.1:9092')
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b !== '');

/** Pulsar web service (admin REST and WebSocket API), e.g. http://127.0.0.1:8080. */
export const PULSAR_URL: string = env('EVENTFOLD_PULSAR_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** Pulsar binary protocol (src/backends/pulsar/client), e.g. pulsar://127.0.0.1:6650. */
export const PULSAR_SERVICE_URL: string = env('EVENTFOLD_PULSAR_SERVICE_URL', 'pulsar://127.0.0.1:6650');

/** The same host as PULSAR_URL with the ws:/wss: scheme, for /ws/v2/... endpoints. */
export const PULSAR_WS_URL: string = PULSAR_URL.replace(/^http/, 'ws');

export const REDIS_URL: string = env('EVENTFOLD_REDIS_URL', 'redis://127.0.0.1:6379');

/**
 * Nodes of the Redis Cluster (scripts/services `redis-cluster`: three masters), as
 * `redis://host:port` URLs for node-redis `createCluster({ rootNodes: [{ url }] })`.
 * EVENTFOLD_REDIS_CLUSTER_NODES is a comma-separated list of host:port (or redis:// URLs).
 */
export const REDIS_CLUSTER_URLS: string[] = env('EVENTFOLD_REDIS_CLUSTER_NODES', '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003')
  .split(',')
  .map((n) => n.trim())
  .filter((n) => n !== '')
  .map((n) => (/^rediss?:\/\//.test(n) ? n : `redis://${n}`));

export const POSTGRES_URL: string = env('EVENTFOLD_POSTGRES_URL', 'postgres://postgres@127.0.0.1:5432/eventfold');

/** A name no earlier run used: `${prefix}-<time>-<random>`, safe for topics, streams, namespaces, tables. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}
