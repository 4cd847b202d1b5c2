// How a claim waits for the transactions still open on a partition before it stamps its marker.
import { DriverError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import type { PulsarAdmin } from './admin.ts';
import { PULSAR as NAME } from './client/errors.ts';

/** What `GET /admin/v3/transactions/transactionBufferStats/{topic}` says that we use. */
interface TransactionBufferStats {
  readonly ongoingTxnSize?: number;
}

/**
 * Resolves once no transaction is open on `topic` (a partition), polling the broker's
 * transaction buffer stats; fails after `waitMs`. A claim calls it after its producer has
 * fenced the old owner, so no new transaction can start there: only an old owner's
 * `appendAcross` can still be open, holding a commit that readers (and `lastMessage`) do not
 * get yet, published up to now. The claim marker's publish time must not be below that
 * commit's, or publish times go back along the partition and the broker's search by time
 * (readSince) can skip the commit. A broker without a transaction buffer on the topic (404, or
 * transactions off: 503) has nothing open.
 */
export async function noOpenTransactions(admin: PulsarAdmin, topic: string, waitMs: number): Promise<void> {
  const path = `transactions/transactionBufferStats/${topic.slice('persistent://'.length)}`;
  const deadline = Date.now() + waitMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    const res = await admin.request('GET', path, undefined, 'v3');
    if (res.status === 404 || res.status === 503) return;
    if (!res.ok) throw new DriverError(NAME, `admin GET /admin/v3/${path} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const stats = (await res.json()) as TransactionBufferStats;
    if ((stats.ongoingTxnSize ?? 0) === 0) return;
    if (Date.now() > deadline) {
      throw new DriverError(
        NAME,
        `${topic}: a transaction stayed open over ${waitMs} ms (is transactionTimeoutMs the same on every process of the store?)`,
      );
    }
    await sleep(wait);
  }
}
