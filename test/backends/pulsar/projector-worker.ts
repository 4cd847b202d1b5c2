// Child process for the projector's kill test: runs one pulsarProjector that writes one message
// per event to an output topic, prints JSON lines ({ started }, { handled } every 20 handler
// calls, { killing } before a self-kill, then { caughtUp, … }), then closes the store (not the
// projector: closing the store must close it) and exits on its own, so a leaked client shows up
// as a worker that never exits.
//   node projector-worker.ts <namespace> <prefix> <group> <output>
// Env: PROJECTOR_KILL=before-commit  SIGKILL itself before the END_TXN of its second batch, when
//        that batch's outputs are sent and its entries acked in the open transaction;
//      PROJECTOR_DELAY_MS=n  sleep n ms in each handler call.
import { createEventStore } from '../../../src/index.ts';
import { pulsar, pulsarProjector } from '../../../src/backends/pulsar/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL } from '../../services/env.ts';
import { beforeCommit } from './txn-hooks.ts';

const [namespace, prefix, group, output] = process.argv.slice(2) as [string, string, string, string];
const delayMs = Number(process.env.PROJECTOR_DELAY_MS ?? '0');
const say = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

if (process.env.PROJECTOR_KILL === 'before-commit') {
  let commits = 0;
  beforeCommit(async (txn) => {
    if (++commits < 2) return;
    say({ killing: true, txn: `(${txn.mostBits},${txn.leastBits})` });
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => undefined);
  });
}

const store = createEventStore({
  driver: pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 2 }),
  events: [Deposited, Withdrawn],
});
let handled = 0;
const projector = pulsarProjector(store, {
  group,
  batchSize: 40,
  transactionTimeoutMs: 5000,
  handle: async (event) => {
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (++handled % 20 === 0) say({ handled });
    const signed = event.type === 'Deposited' ? event.data.amount : -event.data.amount;
    return {
      topic: output,
      key: event.streamId,
      value: JSON.stringify({ id: event.id, streamId: event.streamId, version: event.version, signed }),
    };
  },
});
await projector.started;
say({ started: true });
await projector.caughtUp();
say({ caughtUp: true, processed: projector.processed, deadLettered: projector.deadLettered });
await store.close();
await projector.done;
