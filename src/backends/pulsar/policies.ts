import { arg, describe } from '../../core/arguments.ts';
import { DriverError, InvalidArgumentError } from '../../core/errors.ts';
import type { PulsarAdmin } from './admin.ts';
import { PULSAR as NAME } from './client/errors.ts';

/** What the broker does with a write once a consumer group's backlog passes the quota. */
export type BacklogQuotaPolicy = 'producer_request_hold' | 'producer_exception';

/**
 * Policies of the store's namespace (one per bounded context), provisioned on every open
 * through admin REST: read, compared, and only what differs written. A policy left out is not
 * managed (what the namespace has stays), except retention and deduplication (see each).
 *
 * There is no namespace message TTL: a TTL acknowledges what a durable subscription has not
 * consumed yet, so on the events topic it would make consumer groups skip events. A store
 * refuses to open on a namespace that has one; dead letters get theirs per topic.
 */
export interface PulsarPolicies {
  /**
   * How long the namespace's topics keep data no subscription still needs: `'infinite'`, or
   * deleted once older than `minutes` or past `megabytes` per topic (a limit left out is
   * unlimited). Log readers are non-durable, so for the events topic this is how much history
   * the store keeps: finite only for a store that may lose old events. Default: infinite, set
   * when the namespace has none or the broker's default (0/0: delete on acknowledgement).
   */
  readonly retention?: 'infinite' | { readonly minutes?: number; readonly megabytes?: number };
  /** Offload a topic's ledgers to tiered storage (an offloader configured on the broker) past this size per topic, or `'off'`. */
  readonly offloadThreshold?: 'off' | { readonly megabytes: number };
  /**
   * Size of a subscription's backlog (a consumer group behind by that much) past which writes
   * are held or refused, or `'none'`. Eviction is not offered: it would skip consumer groups' events.
   */
  readonly backlogQuota?: 'none' | { readonly megabytes: number; readonly policy: BacklogQuotaPolicy };
  /** Always on: the writers' resends after a reconnect are stored once only because of it. */
  readonly deduplication?: true;
  /**
   * Dead letters older than this are dropped: each consumer group's dead-letter topic gets a
   * topic-level message TTL and a retention of as many minutes (rounded up) when the group
   * first uses it. Letters are read without a subscription, so the retention deletes them, with
   * the ledger that holds them: up to the broker's ledger rollover time later
   * (`managedLedgerMaxLedgerRolloverTimeMinutes`, 4 h by default). Never applied to events.
   * Default: letters are kept (an existing dead-letter topic's TTL is left as it is).
   */
  readonly deadLetterTtlSeconds?: number;
}

const MB = 1024 * 1024;
/** Pulsar keeps minutes and seconds as Java ints. */
const MAX_INT = 2 ** 31 - 1;
/** Megabytes whose byte count is still a safe integer. */
const MAX_MEGABYTES = Math.floor(Number.MAX_SAFE_INTEGER / MB);

function intIn(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

function onlyKeys(value: object, name: string, keys: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw new InvalidArgumentError(`${name} has no option ${JSON.stringify(key)} (options: ${keys.join(', ')})`);
  }
}

/** The policies checked (InvalidArgumentError naming the bad one), before any network call. */
export function checkPolicies(value: PulsarPolicies | undefined): PulsarPolicies {
  const p = arg.options(value, 'policies');
  onlyKeys(p, 'policies', ['retention', 'offloadThreshold', 'backlogQuota', 'deduplication', 'deadLetterTtlSeconds']);
  if (p.retention !== undefined && p.retention !== 'infinite') {
    const r = arg.object(p.retention, "policies.retention (an object or 'infinite')");
    onlyKeys(r, 'policies.retention', ['minutes', 'megabytes']);
    if (r.minutes === undefined && r.megabytes === undefined) {
      throw new InvalidArgumentError("policies.retention needs minutes or megabytes (or is 'infinite')");
    }
    arg.optional(r.minutes, (n) => intIn(n, 'policies.retention.minutes', 1, MAX_INT));
    arg.optional(r.megabytes, (n) => intIn(n, 'policies.retention.megabytes', 1, MAX_MEGABYTES));
  }
  if (p.offloadThreshold !== undefined && p.offloadThreshold !== 'off') {
    const o = arg.object(p.offloadThreshold, "policies.offloadThreshold (an object or 'off')");
    onlyKeys(o, 'policies.offloadThreshold', ['megabytes']);
    intIn(o.megabytes, 'policies.offloadThreshold.megabytes', 0, MAX_MEGABYTES);
  }
  if (p.backlogQuota !== undefined && p.backlogQuota !== 'none') {
    const q = arg.object(p.backlogQuota, "policies.backlogQuota (an object or 'none')");
    onlyKeys(q, 'policies.backlogQuota', ['megabytes', 'policy']);
    intIn(q.megabytes, 'policies.backlogQuota.megabytes', 1, MAX_MEGABYTES);
    if ((q.policy as string) === 'consumer_backlog_eviction') {
      throw new InvalidArgumentError(
        "policies.backlogQuota.policy 'consumer_backlog_eviction' would acknowledge events consumer groups have not processed; use 'producer_request_hold' or 'producer_exception'",
      );
    }
    arg.oneOf(q.policy, 'policies.backlogQuota.policy', ['producer_request_hold', 'producer_exception']);
  }
  if (p.deduplication !== undefined && p.deduplication !== true) {
    throw new InvalidArgumentError(
      `policies.deduplication must be true (or left out), got ${describe(p.deduplication)}: the Pulsar driver relies on it to store a writer's resends once`,
    );
  }
  arg.optional(p.deadLetterTtlSeconds, (n) => intIn(n, 'policies.deadLetterTtlSeconds', 1, MAX_INT));
  return p;
}

interface RetentionBody {
  readonly retentionTimeInMinutes: number;
  readonly retentionSizeInMB: number;
}

interface QuotaBody {
  readonly limitSize: number;
  readonly limitTime: number;
  readonly policy: string;
}

/** The namespace's policies as `GET /admin/v2/namespaces/{tenant}/{namespace}` answers (the fields used). */
interface NamespacePolicies {
  readonly retention_policies?: RetentionBody | null;
  readonly deduplicationEnabled?: boolean | null;
  readonly message_ttl_in_seconds?: number | null;
  readonly backlog_quota_map?: Record<string, QuotaBody | undefined> | null;
}

const QUOTA = 'backlogQuota?backlogQuotaType=destination_storage';

/** A write of one policy; a refusal is a DriverError naming the policy and quoting the broker. */
async function write(admin: PulsarAdmin, policy: string, where: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await admin.request(method, path, body);
  if (!res.ok) {
    throw new DriverError(NAME, `policy ${policy} on ${where}: the broker refused it (${res.status}): ${(await res.text()).slice(0, 500)}`);
  }
}

/**
 * Brings the namespace's policies to `policies` (checked by checkPolicies): one read of the
 * namespace, a read of the offload threshold when it is managed, and a write per difference.
 */
export async function applyNamespacePolicies(admin: PulsarAdmin, namespace: string, policies: PulsarPolicies): Promise<void> {
  const base = `namespaces/${namespace}`;
  const where = `namespace ${namespace}`;
  const current = (await admin.json<NamespacePolicies | null>(base)) ?? {};
  const ttl = current.message_ttl_in_seconds;
  if (typeof ttl === 'number' && ttl > 0) {
    throw new DriverError(
      NAME,
      `${where} has a message TTL of ${ttl} s, which would acknowledge events consumer groups have not processed: remove it (pulsar-admin namespaces remove-message-ttl ${namespace}); dead letters take policies.deadLetterTtlSeconds`,
    );
  }
  if (current.deduplicationEnabled !== true) await write(admin, 'deduplication', where, 'POST', `${base}/deduplication`, true);

  const wantRetention = retentionBody(policies.retention, current.retention_policies);
  const now = current.backlog_quota_map?.destination_storage;
  const q = policies.backlogQuota;
  const wantQuota = q === undefined || q === 'none' ? q : { limitSize: q.megabytes * MB, limitTime: -1, policy: q.policy };
  const quotaChanges = wantQuota === 'none' ? now !== undefined : wantQuota !== undefined && !sameQuota(now, wantQuota);
  const writeQuota = async (): Promise<void> => {
    if (wantQuota === 'none') await write(admin, 'backlogQuota', where, 'DELETE', `${base}/${QUOTA}`);
    else await write(admin, 'backlogQuota', where, 'POST', `${base}/${QUOTA}`, wantQuota);
  };
  // The broker wants retention above the backlog quota: a quota that shrinks goes first, one that grows after.
  const quotaFirst =
    quotaChanges && (wantQuota === 'none' || (now !== undefined && wantQuota !== undefined && wantQuota.limitSize < now.limitSize));
  if (quotaFirst) await writeQuota();
  const r = current.retention_policies;
  if (
    wantRetention &&
    (r?.retentionTimeInMinutes !== wantRetention.retentionTimeInMinutes || r.retentionSizeInMB !== wantRetention.retentionSizeInMB)
  ) {
    await write(admin, 'retention', where, 'POST', `${base}/retention`, wantRetention);
  }
  if (quotaChanges && !quotaFirst) await writeQuota();

  if (policies.offloadThreshold !== undefined) {
    const bytes = policies.offloadThreshold === 'off' ? -1 : policies.offloadThreshold.megabytes * MB;
    const found = await admin.json<number | null>(`${base}/offloadThreshold`);
    if (found !== bytes) await write(admin, 'offloadThreshold', where, 'PUT', `${base}/offloadThreshold`, bytes);
  }
}

/** The retention to have, or undefined to leave what is there (no retention asked and one other than the deleting default is set). */
function retentionBody(asked: PulsarPolicies['retention'], found: RetentionBody | null | undefined): RetentionBody | undefined {
  if (asked === undefined) {
    const unset = !found || (found.retentionTimeInMinutes === 0 && found.retentionSizeInMB === 0);
    return unset ? { retentionTimeInMinutes: -1, retentionSizeInMB: -1 } : undefined;
  }
  if (asked === 'infinite') return { retentionTimeInMinutes: -1, retentionSizeInMB: -1 };
  return { retentionTimeInMinutes: asked.minutes ?? -1, retentionSizeInMB: asked.megabytes ?? -1 };
}

function sameQuota(found: QuotaBody | undefined, want: QuotaBody): boolean {
  return (
    found !== undefined && found.limitSize === want.limitSize && (found.limitTime ?? -1) === want.limitTime && found.policy === want.policy
  );
}

/**
 * A dead-letter topic's TTL (see `PulsarPolicies.deadLetterTtlSeconds`): topic-level message
 * TTL and retention, each read first and written only when it differs. Topic policies must be
 * enabled on the broker (`topicLevelPoliciesEnabled`, the default since 2.11).
 */
export async function applyDeadLetterTtl(admin: PulsarAdmin, topic: string, ttlSeconds: number): Promise<void> {
  const path = `persistent/${topic.slice('persistent://'.length)}`;
  const where = `dead-letter topic ${topic}`;
  const ttl = await admin.json<number | null>(`${path}/messageTTL`);
  if (ttl !== ttlSeconds)
    await write(admin, 'deadLetterTtlSeconds (message TTL)', where, 'POST', `${path}/messageTTL?messageTTL=${ttlSeconds}`);
  const want: RetentionBody = { retentionTimeInMinutes: Math.ceil(ttlSeconds / 60), retentionSizeInMB: -1 };
  const r = await admin.json<RetentionBody | null>(`${path}/retention`);
  if (r?.retentionTimeInMinutes !== want.retentionTimeInMinutes || r.retentionSizeInMB !== want.retentionSizeInMB) {
    await write(admin, 'deadLetterTtlSeconds (retention)', where, 'POST', `${path}/retention`, want);
  }
}

/**
 * A topic-level retention of `minutes` (size unlimited) on `topic`, for topics whose messages
 * are worth nothing once handled (the namespace keeps events forever). Read, compare, write.
 */
export async function applyTopicRetention(admin: PulsarAdmin, topic: string, minutes: number): Promise<void> {
  const path = `persistent/${topic.slice('persistent://'.length)}/retention`;
  const want: RetentionBody = { retentionTimeInMinutes: minutes, retentionSizeInMB: -1 };
  const r = await admin.json<RetentionBody | null>(path);
  if (r?.retentionTimeInMinutes !== want.retentionTimeInMinutes || r.retentionSizeInMB !== want.retentionSizeInMB) {
    await write(admin, 'retention', `topic ${topic}`, 'POST', path, want);
  }
}

/**
 * A topic-level compaction threshold of `bytes` on `topic` (the broker compacts the topic once
 * that much is written since the last compaction: readers with `readCompacted` then read the
 * newest value per key and the tail). Read, compare, write.
 */
export async function applyCompactionThreshold(admin: PulsarAdmin, topic: string, bytes: number): Promise<void> {
  const path = `persistent/${topic.slice('persistent://'.length)}/compactionThreshold`;
  const current = await admin.json<number | null>(path);
  if (current !== bytes) await write(admin, 'compactionThreshold', `topic ${topic}`, 'POST', path, bytes);
}
