// Shared by the Pulsar driver tests: admin REST calls and the teardown of a test namespace
// (topics first, then the namespace: the broker refuses forced namespace deletes).
import { dropPulsarNamespace } from '../../../bench/workloads/pulsar-common.ts';
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
  await dropPulsarNamespace(namespace, tenant);
}
