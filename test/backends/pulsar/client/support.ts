// Shared by the Pulsar client tests: a fresh namespace per test file on the real standalone
// (public/<unique>, retention on so acked messages stay readable), topic names in it, and a
// teardown that force-deletes what the file made.
import assert from 'node:assert/strict';
import { PulsarClient } from '../../../../src/backends/pulsar/client/client.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../../services/env.ts';

export async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${PULSAR_URL}/admin/v2/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
}

export async function adminOk(method: string, path: string, body?: unknown): Promise<Response> {
  const res = await admin(method, path, body);
  assert.ok(res.ok, `${method} /admin/v2/${path} answered ${res.status}: ${await res.clone().text()}`);
  return res;
}

export class TestNamespace {
  readonly name: string;
  private readonly clients: PulsarClient[] = [];
  private constructor(name: string) {
    this.name = name;
  }

  static async create(label: string, options: { deduplication?: boolean } = {}): Promise<TestNamespace> {
    const ns = new TestNamespace(`public/${uniqueName(`client-${label}`)}`);
    await adminOk('PUT', `namespaces/${ns.name}`);
    await adminOk('POST', `namespaces/${ns.name}/retention`, { retentionTimeInMinutes: -1, retentionSizeInMB: -1 });
    if (options.deduplication) await adminOk('POST', `namespaces/${ns.name}/deduplication`, true);
    return ns;
  }

  topic(label: string): string {
    return `persistent://${this.name}/${uniqueName(label)}`;
  }

  /** A client against the test broker, closed by cleanup(). */
  client(options: Partial<ConstructorParameters<typeof PulsarClient>[0]> = {}): PulsarClient {
    const client = new PulsarClient({ serviceUrl: PULSAR_SERVICE_URL, operationTimeoutMs: 15_000, ...options });
    this.clients.push(client);
    return client;
  }

  async createPartitionedTopic(label: string, partitions: number): Promise<string> {
    const topic = this.topic(label);
    await adminOk('PUT', `persistent/${topic.slice('persistent://'.length)}/partitions`, partitions);
    return topic;
  }

  async cleanup(): Promise<void> {
    await Promise.allSettled(this.clients.map((c) => c.close()));
    const res = await admin('GET', `namespaces/${this.name}/topics`);
    const topics = res.ok ? ((await res.json()) as string[]) : [];
    const partitioned = await admin('GET', `persistent/${this.name}/partitioned`);
    const parents = partitioned.ok ? ((await partitioned.json()) as string[]) : [];
    for (const t of parents) await admin('DELETE', `persistent/${t.slice('persistent://'.length)}/partitions?force=true`);
    for (const t of topics) await admin('DELETE', `persistent/${t.slice('persistent://'.length)}?force=true`);
    // Forced namespace deletes are disabled on the broker; it is empty by now.
    const gone = await admin('DELETE', `namespaces/${this.name}`);
    assert.ok(gone.ok, `deleting namespace ${this.name} answered ${gone.status}: ${await gone.text()}`);
  }
}

export const text = (s: string): Uint8Array => Buffer.from(s, 'utf8');
export const str = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
