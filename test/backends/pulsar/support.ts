// Shared by the Pulsar driver tests: admin REST calls and the teardown of a test namespace
// (topics first, then the namespace: the broker refuses forced namespace deletes).
import assert from 'node:assert/strict';
import { PULSAR_URL } from '../../services/env.ts';

export async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${PULSAR_URL}/admin/v2/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
}

export async function dropNamespace(tenant: string, namespace: string): Promise<void> {
  const ns = `${tenant}/${namespace}`;
  // Topics a closing consumer or a transaction's pending-ack state brings back a moment later
  // make the broker answer 409 "non empty bundle": delete what is there again, for up to 30 s.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const partitioned = await admin('GET', `persistent/${ns}/partitioned`);
    for (const t of partitioned.ok ? ((await partitioned.json()) as string[]) : []) {
      await admin('DELETE', `persistent/${t.slice('persistent://'.length)}/partitions?force=true`);
    }
    // With system topics: a transactional ack leaves a `…__transaction_pending_ack` topic per subscription.
    const topics = await admin('GET', `namespaces/${ns}/topics?includeSystemTopic=true`);
    for (const t of topics.ok ? ((await topics.json()) as string[]) : []) {
      await admin('DELETE', `persistent/${t.slice('persistent://'.length)}?force=true`);
    }
    const gone = await admin('DELETE', `namespaces/${ns}`);
    if (gone.ok || gone.status === 404) return;
    const reason = await gone.text();
    if (gone.status !== 409 || Date.now() > deadline) assert.fail(`deleting namespace ${ns} answered ${gone.status}: ${reason}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
