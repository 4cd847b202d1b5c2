import { DriverError } from '../../core/errors.ts';
import { PULSAR as NAME } from './client/errors.ts';

export interface PulsarAdminOptions {
  /** The web service, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Bearer token for the admin API (the same token the binary protocol sends, when it is one). */
  readonly token?: (() => string | Promise<string>) | undefined;
  readonly timeoutMs?: number | undefined;
}

/**
 * Idempotent setup through the admin REST API (research (f)): tenant, namespace and its
 * policies, topics. Every call may run again on every open; "already exists" is success.
 */
export class PulsarAdmin {
  readonly #options: PulsarAdminOptions;

  constructor(options: PulsarAdminOptions) {
    this.#options = options;
  }

  /** `path` under `/admin/<version>/` (v2 for most; transactions are under v3). */
  async request(method: string, path: string, body?: unknown, version: 'v2' | 'v3' = 'v2'): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#options.token) headers.authorization = `Bearer ${await this.#options.token()}`;
    try {
      return await fetch(`${this.#options.url.replace(/\/+$/, '')}/admin/${version}/${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
      });
    } catch (error) {
      throw new DriverError(NAME, `admin ${method} ${path}: ${(error as Error).message}`, error);
    }
  }

  /** The request, which must succeed (or answer one of `also`, e.g. 409 for "exists"). */
  async ok(method: string, path: string, body?: unknown, also: readonly number[] = [], version: 'v2' | 'v3' = 'v2'): Promise<Response> {
    const res = await this.request(method, path, body, version);
    if (!res.ok && !also.includes(res.status)) {
      throw new DriverError(NAME, `admin ${method} /admin/${version}/${path} answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
    }
    return res;
  }

  async json<T>(path: string, version: 'v2' | 'v3' = 'v2'): Promise<T> {
    const text = await (await this.ok('GET', path, undefined, [], version)).text();
    return (text.trim() === '' ? null : JSON.parse(text)) as T;
  }

  /**
   * The tenant (on every cluster the broker knows, when it has to be made) and the namespace.
   * Its policies are policies.ts's (retention, deduplication…), applied after.
   */
  async ensureNamespace(tenant: string, namespace: string): Promise<void> {
    const found = await this.request('GET', `tenants/${tenant}`);
    if (found.status === 404) {
      const clusters = await this.json<string[]>('clusters');
      await this.ok('PUT', `tenants/${tenant}`, { adminRoles: [], allowedClusters: clusters }, [409]);
    } else if (!found.ok) {
      throw new DriverError(NAME, `admin GET tenants/${tenant} answered ${found.status}: ${(await found.text()).slice(0, 500)}`);
    }
    await this.ok('PUT', `namespaces/${tenant}/${namespace}`, undefined, [409]);
  }

  /** A partitioned topic with `partitions` partitions; an existing one must have that many. */
  async ensurePartitionedTopic(topic: string, partitions: number): Promise<void> {
    const path = `persistent/${topic.slice('persistent://'.length)}/partitions`;
    const made = await this.ok('PUT', path, partitions, [409]);
    if (made.status !== 409) return;
    const meta = await this.json<{ partitions: number }>(path);
    if (meta.partitions !== partitions) {
      throw new DriverError(
        NAME,
        `${topic} has ${meta.partitions} partitions, not ${partitions}: the partition count is fixed for the life of the data`,
      );
    }
  }

  /** A non-partitioned topic. */
  async ensureTopic(topic: string): Promise<void> {
    await this.ok('PUT', `persistent/${topic.slice('persistent://'.length)}`, undefined, [409]);
  }
}
