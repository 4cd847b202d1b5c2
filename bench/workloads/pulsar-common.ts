// What Pulsar benches share: where the broker is (the env vars the tests use, or the local
// standalone of `scripts/services up pulsar`) and the clean-up of a namespace (the Pulsar tests'
// teardown uses it too: test/backends/pulsar/support.ts).

/** Binary protocol and admin URLs; child processes inherit the env vars. */
export const pulsarUrls = (): { serviceUrl: string; adminUrl: string } => ({
  serviceUrl: process.env.EVENTFOLD_PULSAR_SERVICE_URL?.trim() || 'pulsar://127.0.0.1:6650',
  adminUrl: (process.env.EVENTFOLD_PULSAR_URL?.trim() || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
});

async function admin(method: string, path: string): Promise<Response> {
  return fetch(`${pulsarUrls().adminUrl}/admin/v2/${path}`, { method, signal: AbortSignal.timeout(30_000) });
}

/**
 * Deletes a namespace with its topics, system topics included (a transactional ack leaves a
 * `…__transaction_pending_ack` topic per subscription). The broker refuses a namespace that
 * still has topics, and closing consumers or pending-ack state bring some back for a moment
 * (409 "non empty bundle"): tried again for up to 30 s.
 */
export async function dropPulsarNamespace(namespace: string, tenant = 'public'): Promise<void> {
  const ns = `${tenant}/${namespace}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const partitioned = await admin('GET', `persistent/${ns}/partitioned`);
    for (const t of partitioned.ok ? ((await partitioned.json()) as string[]) : []) {
      await admin('DELETE', `persistent/${t.slice('persistent://'.length)}/partitions?force=true`);
    }
    const topics = await admin('GET', `namespaces/${ns}/topics?includeSystemTopic=true`);
    for (const t of topics.ok ? ((await topics.json()) as string[]) : []) {
      await admin('DELETE', `persistent/${t.slice('persistent://'.length)}?force=true`);
    }
    const gone = await admin('DELETE', `namespaces/${ns}`);
    if (gone.ok || gone.status === 404) return;
    if (gone.status !== 409 || Date.now() > deadline)
      throw new Error(`deleting namespace ${ns} answered ${gone.status}: ${await gone.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
