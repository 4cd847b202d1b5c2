// The core's routed-append path (append-router.ts) over a fake writer group: what a caller sees
// when the owner's reply races the send that carried the request.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AppendRouting, PartitionOwnerDriver } from '../../src/core/driver.ts';
import { decodeRequest, encodeReply } from '../../src/core/log/routed-messages.ts';
import { createEventStore, ExpectedVersionConflictError, PartitionFencedError } from '../../src/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { fencedSqlite } from '../support/fenced-sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-router-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const events = [Deposited, Withdrawn] as const;

/** A group in which this process owns nothing, whose owner answers every request with a conflict before the send has its receipt. */
function replyBeforeReceipt(actualVersion: number): AppendRouting {
  return {
    join: async (handler) => {
      handler.owned(new Set());
      return {
        address: 'fake-member',
        send: async (_partition, bytes) => {
          const request = decodeRequest(bytes);
          const first = request.requests[0]!;
          const error = new ExpectedVersionConflictError(first.streamId, first.expectedVersion, actualVersion, 'fake');
          // As a process resumed after SIGSTOP sees it: the reply is delivered, the receipt comes later.
          handler.reply(encodeReply({ id: request.id, error }));
          await new Promise((resolve) => setTimeout(resolve, 50));
        },
        reply: async () => undefined,
        leave: async () => undefined,
      };
    },
  };
}

/** A group in which this process owns every partition (nothing is routed). */
function ownsAll(partitions: number): AppendRouting {
  return {
    join: async (handler) => {
      handler.owned(new Set(Array.from({ length: partitions }, (_, p) => p)));
      return {
        address: 'fake-owner',
        send: async () => {
          throw new Error('nothing is routed: this process owns every partition');
        },
        reply: async () => undefined,
        leave: async () => undefined,
      };
    },
  };
}

/** Makes the driver's next `failures` claims fail as a claim fenced by a racing claimer does. */
function failingClaims(driver: PartitionOwnerDriver, failures: number): { claims: () => number } {
  const claim = driver.claimPartition.bind(driver);
  let claims = 0;
  driver.claimPartition = async (partition) => {
    claims++;
    if (claims <= failures) throw new PartitionFencedError(driver.name, partition, new Error('fenced by a racing claim'));
    return claim(partition);
  };
  return { claims: () => claims };
}

describe('append router', () => {
  it('an owner whose claims are fenced by racing claimers claims again: the caller sees success, never PartitionFencedError', async () => {
    const base = fencedSqlite(join(dir, 'claim-storm.db'));
    const driver: PartitionOwnerDriver = { ...base, routing: ownsAll(base.partitions) };
    const claims = failingClaims(driver, 3);
    const store = createEventStore({ driver, events });
    const result = await store.append('account-1', Deposited({ amount: 1 }), { expectedVersion: 'no_stream' });
    assert.equal(result.nextExpectedVersion, 1);
    assert.equal(claims.claims(), 4, 'three fenced claims, then one that held');
    // The same for an appendMany: its claims are retried too (a second store, so it claims afresh).
    const base2 = fencedSqlite(join(dir, 'claim-storm.db'));
    const driver2: PartitionOwnerDriver = { ...base2, routing: ownsAll(base2.partitions) };
    const again = failingClaims(driver2, 2);
    const store2 = createEventStore({ driver: driver2, events });
    const outcomes = await store2.appendMany([
      { streamId: 'account-1', events: [Withdrawn({ amount: 1 })], expectedVersion: 1 },
      { streamId: 'account-2', events: [Deposited({ amount: 1 })], expectedVersion: 'no_stream' },
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.nextExpectedVersion),
      [2, 1],
    );
    assert.equal(again.claims(), 3, 'two fenced claims, then one that held');
    await store.close();
    await store2.close();
  });

  it('without a writer group, claims that stay fenced reach the caller as PartitionFencedError after the takeover limit', async () => {
    const driver = fencedSqlite(join(dir, 'claim-fenced.db'));
    const claims = failingClaims(driver, 1000);
    const store = createEventStore({ driver, events });
    await assert.rejects(store.append('account-1', Deposited({ amount: 1 })), PartitionFencedError);
    await assert.rejects(
      store.appendMany([
        { streamId: 'account-1', events: [Withdrawn({ amount: 1 })] },
        { streamId: 'account-2', events: [Deposited({ amount: 1 })] },
      ]),
      PartitionFencedError,
    );
    assert.equal(claims.claims(), 10, 'each call gives up after 5 claims (maxTakeovers 3, plus the first and the last)');
    await store.close();
  });

  it("an owner's typed error that arrives before the send's receipt reaches the caller, and is never an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const driver: PartitionOwnerDriver = { ...fencedSqlite(join(dir, 'early-reply.db')), routing: replyBeforeReceipt(3) };
      const store = createEventStore({ driver, events });
      await assert.rejects(store.append('account-1', Deposited({ amount: 1 }), { expectedVersion: 0 }), (error: unknown) => {
        assert.ok(error instanceof ExpectedVersionConflictError, `a typed conflict, got ${String(error)}`);
        assert.equal(error.actualVersion, 3);
        return true;
      });
      // Let Node report any rejection nobody handled in time.
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(unhandled, [], 'no unhandled rejection');
      await store.close();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
