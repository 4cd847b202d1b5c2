// The writer group's reply reader (`routing: true`): a reply sent while the reader reconnects,
// before it has taken any reply, must still reach it. (It was started at LATEST, and a reader
// resubscribes after what it took last, else at its start: LATEST then skipped that reply, and
// its sender waited 30 s for the resend.)
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Connection } from '../../../src/backends/pulsar/client/connection.ts';
import { BaseCommand_Type as T } from '../../../src/backends/pulsar/client/proto/PulsarApi_pb.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import type { RoutingHandler } from '../../../src/core/driver.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { dropNamespace } from './support.ts';

const namespace = uniqueName('replies');
after(() => dropNamespace('public', namespace));

describe('pulsar writer group: replies', () => {
  it('a reply sent while the reply reader reconnects, before it took any, still reaches it', { timeout: 60_000 }, async () => {
    const driver = pulsar({
      serviceUrl: PULSAR_SERVICE_URL,
      adminUrl: PULSAR_URL,
      namespace,
      prefix: uniqueName('rr'),
      partitions: 2,
      routing: true,
    });
    await driver.open();
    const replies: string[] = [];
    const handler: RoutingHandler = {
      owned: () => undefined,
      requests: async (_partition, batch) => batch[batch.length - 1]!.offset + 1n,
      reply: (bytes) => replies.push(new TextDecoder().decode(bytes)),
    };
    // Hold the reply reader's subscriptions after its first for 1 s, and keep the connection it subscribed on.
    const request = Connection.prototype.request;
    let replyConnection: Connection | undefined;
    let subscribes = 0;
    Connection.prototype.request = async function (this: Connection, cmd, requestId, what, options) {
      if (cmd.type === T.SUBSCRIBE && cmd.subscribe?.subscription.startsWith('eventfold-replies-')) {
        subscribes++;
        replyConnection = this;
        if (subscribes > 1) await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      return request.call(this, cmd, requestId, what, options);
    };
    try {
      const member = await driver.routing!.join(handler);
      assert.equal(subscribes, 1);
      replyConnection!.close(); // the reader resubscribes, held for 1 s
      await new Promise((resolve) => setTimeout(resolve, 100));
      await member.reply(member.address, new TextEncoder().encode('sent while reconnecting'));
      const deadline = Date.now() + 10_000;
      while (replies.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(subscribes >= 2, 'the reply reader subscribed again');
      assert.deepEqual(replies, ['sent while reconnecting'], 'the reply reached the reader within 10 s');
      await member.leave();
    } finally {
      Connection.prototype.request = request;
      await driver.close();
    }
  });
});
