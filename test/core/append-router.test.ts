// The core's routed-append path (append-router.ts) over a fake writer group: what a caller sees
// when the owner's reply races the send that carried the request.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AppendRouting, PartitionOwnerDriver } from '../../src/core/driver.ts';
import { decodeRequest, encodeReply } from '../../src/core/log/routed-messages.ts';
import { createEventStore, ExpectedVersionConflictError } from '../../src/index.ts';
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

describe('append router', () => {
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
