// What Pulsar benches share: where the broker is (the env vars the tests use, or the local
// standalone of `scripts/services up pulsar`), the clean-up of a namespace (the Pulsar tests'
// teardown uses it too: test/backends/pulsar/support.ts), and for the `pulsar` suite its
// preflight, its setup line and the namespace of a target's round (unique, kept in the target's
// bench directory so the memory probe's child process finds the same topics).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PulsarClient } from '../../src/backends/pulsar/client/client.ts';

/** Binary protocol and admin URLs; child processes inherit the env vars. */
export const pulsarUrls = (): { serviceUrl: string; adminUrl: string } => ({
  serviceUrl: process.env.EVENTFOLD_PULSAR_SERVICE_URL?.trim() || 'pulsar://127.0.0.1:6650',
  adminUrl: (process.env.EVENTFOLD_PULSAR_URL?.trim() || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
});

/** Partitions of the events topic of both targets (eventfold's default). */
export const PULSAR_PARTITIONS = 8;

export async function pulsarAdmin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${pulsarUrls().adminUrl}/admin/v2/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
}

/** The admin call, which must answer 2xx (or one of `also`). */
export async function pulsarAdminOk(method: string, path: string, body?: unknown, also: readonly number[] = []): Promise<Response> {
  const res = await pulsarAdmin(method, path, body);
  if (!res.ok && !also.includes(res.status)) throw new Error(`Pulsar admin ${method} ${path} answered ${res.status}: ${await res.text()}`);
  return res;
}

/**
 * Deletes a namespace with its topics, system topics included (a transactional ack leaves a
 * `…__transaction_pending_ack` topic per subscription). The broker refuses a namespace that
 * still has topics, and closing consumers or pending-ack state bring some back for a moment
 * (409 "non empty bundle"), or a topic's delete failed during a compaction (422): tried again
 * for up to 30 s.
 */
export async function dropPulsarNamespace(namespace: string, tenant = 'public'): Promise<void> {
  const ns = `${tenant}/${namespace}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const partitioned = await pulsarAdmin('GET', `persistent/${ns}/partitioned`);
    for (const t of partitioned.ok ? ((await partitioned.json()) as string[]) : []) {
      await pulsarAdmin('DELETE', `persistent/${t.slice('persistent://'.length)}/partitions?force=true`);
    }
    const topics = await pulsarAdmin('GET', `namespaces/${ns}/topics?includeSystemTopic=true`);
    for (const t of topics.ok ? ((await topics.json()) as string[]) : []) {
      await pulsarAdmin('DELETE', `persistent/${t.slice('persistent://'.length)}?force=true`);
    }
    const gone = await pulsarAdmin('DELETE', `namespaces/${ns}`);
    if (gone.ok || gone.status === 404) return;
    // 422: a topic's delete failed while the broker compacted it (a compacted topic of ours, or
    // the broker's own __transaction_buffer_snapshot); it goes on the next try.
    if ((gone.status !== 409 && gone.status !== 422) || Date.now() > deadline)
      throw new Error(`deleting namespace ${ns} answered ${gone.status}: ${await gone.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** The broker answers its admin API and the binary protocol; fails with what to do otherwise. */
export async function preflightPulsar(): Promise<void> {
  const { serviceUrl, adminUrl } = pulsarUrls();
  try {
    const health = await pulsarAdmin('GET', 'brokers/health');
    if (!health.ok) throw new Error(`brokers/health answered ${health.status}`);
    const client = new PulsarClient({ serviceUrl, connectTimeoutMs: 3000, operationTimeoutMs: 5000 });
    try {
      await client.connection();
    } finally {
      await client.close();
    }
  } catch (error) {
    const why = error instanceof Error ? error.message || error.name : String(error);
    throw new Error(
      `pulsar suite: cannot use Pulsar at ${serviceUrl} / ${adminUrl} (${why}). Start the local one with \`scripts/services up pulsar\`, ` +
        'or point EVENTFOLD_PULSAR_SERVICE_URL and EVENTFOLD_PULSAR_URL at a running broker; `--suite sqlite` runs without servers.',
    );
  }
}

/** Server side of the setup, printed under the table. */
export async function describePulsar(): Promise<string> {
  const version = await pulsarAdmin('GET', 'brokers/version').then(
    async (res) => (res.ok ? (await res.text()).trim() : '?'),
    () => '?',
  );
  return (
    `Pulsar ${version} standalone (broker and one bookie in one JVM, ensemble/write/ack quorum 1) at ${pulsarUrls().serviceUrl}, BookKeeper's journal settings at their defaults; ` +
    `both targets write to a partitioned topic of ${PULSAR_PARTITIONS} partitions in a namespace of their own every round (tenant public), with the policies eventfold sets on its namespaces: infinite retention and broker deduplication on. ` +
    'Both targets talk to this one broker, in the same run, in interleaved rounds'
  );
}

const NAMESPACE = /^efbench-[a-z0-9]+-[0-9a-f]{6}-(ef|raw|perf)$/;

/**
 * The namespace of the store kept in `dir`: made up on first use (unique per run, round and
 * target), then read back, so reopening the same dir sees the same topics.
 */
export function namespaceFor(dir: string, kind: 'ef' | 'raw'): string {
  const file = join(dir, 'pulsar-namespace');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const namespace = newBenchNamespace(kind);
  writeFileSync(file, `${namespace}\n`);
  return namespace;
}

export const newBenchNamespace = (kind: 'ef' | 'raw' | 'perf'): string =>
  `efbench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-${kind}`;

/** Drops the namespace of the store kept in `dir`, if it made one. */
export async function dropNamespaceOf(dir: string): Promise<void> {
  const file = join(dir, 'pulsar-namespace');
  if (!existsSync(file)) return;
  const namespace = readFileSync(file, 'utf8').trim();
  if (!NAMESPACE.test(namespace)) throw new Error(`refusing to drop Pulsar namespace of unexpected name ${JSON.stringify(namespace)}`);
  await dropPulsarNamespace(namespace);
}

/** A namespace with eventfold's policies (infinite retention, deduplication), for the targets that set it up themselves. */
export async function createBenchNamespace(namespace: string): Promise<void> {
  if (!NAMESPACE.test(namespace)) throw new Error(`unexpected bench namespace ${JSON.stringify(namespace)}`);
  const ns = `public/${namespace}`;
  await pulsarAdminOk('PUT', `namespaces/${ns}`, undefined, [409]);
  await pulsarAdminOk('POST', `namespaces/${ns}/retention`, { retentionTimeInMinutes: -1, retentionSizeInMB: -1 });
  await pulsarAdminOk('POST', `namespaces/${ns}/deduplication`, true);
}

/** A partitioned topic of `partitions` partitions (an existing one is left as it is). */
export async function createPartitionedTopic(topic: string, partitions: number): Promise<void> {
  await pulsarAdminOk('PUT', `persistent/${topic.slice('persistent://'.length)}/partitions`, partitions, [409]);
}
