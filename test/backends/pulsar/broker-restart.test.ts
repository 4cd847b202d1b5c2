// A broker restart mid-load on Pulsar (a private standalone on free ports of its own: the shared
// one is never touched): appends and a live subscription run while the broker is restarted
// gracefully (SIGTERM), then killed (SIGKILL) and started again on the same data. Each append
// that fails is retried with the same events and expected version until it succeeds (an exact
// retry of one that did land comes back as alreadyStored). Counts events lost and duplicated
// (both must be 0), and what the subscription missed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type PrivatePulsar, startPrivatePulsar } from '../../../scripts/services.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { createEventStore, ExpectedVersionConflictError } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { uniqueName } from '../../services/env.ts';
import { freePort } from '../../support/free-port.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const events = [Deposited, Withdrawn] as const;

let broker: PrivatePulsar | undefined;
let brokerDir: string | undefined;
after(async () => {
  await broker?.destroy().catch(() => undefined);
  if (brokerDir) rmSync(brokerDir, { recursive: true, force: true });
});

interface Acked {
  readonly stream: string;
  readonly ids: readonly string[];
  /** The stream's version after this append. */
  readonly version: number;
}

describe('pulsar reliability: a broker restart mid-load', () => {
  it('appends retried with the same ids and a live subscription ride through a graceful restart and a kill -9: nothing lost, nothing duplicated', {
    timeout: 600_000,
  }, async (t) => {
    brokerDir = mkdtempSync(join(tmpdir(), 'eventfold-prel-broker-'));
    const started = Date.now();
    broker = await startPrivatePulsar({ brokerPort: await freePort(), webPort: await freePort(), dir: brokerDir });
    const b = broker;
    t.diagnostic(`private broker on ${b.serviceUrl} serving after ${Date.now() - started} ms`);
    const options = {
      serviceUrl: b.serviceUrl,
      adminUrl: b.adminUrl,
      namespace: uniqueName('restart'),
      prefix: uniqueName('restart'),
      partitions: 2,
    };
    const backgroundErrors: string[] = [];
    const store = createEventStore({ driver: pulsar(options), events, onBackgroundError: (e) => backgroundErrors.push(String(e)) });
    const streams = Array.from({ length: 4 }, (_, i) => `acct-${i}`);

    // Writers: one loop per stream, each append retried with the same events until it succeeds.
    let stopping = false;
    const acked: Acked[] = [];
    const ackTimes: { stream: string; at: number }[] = [];
    const failures = new Map<string, number>();
    const unresolved: string[] = [];
    let alreadyStored = 0;
    let retried = 0;
    const writers = streams.map(async (stream) => {
      let version = 0;
      for (let n = 0; !stopping; n++) {
        const size = 1 + (n % 2);
        const batch = Array.from({ length: size }, (_, i) => Deposited({ amount: i + 1 }));
        const firstTry = Date.now();
        for (let attempt = 0; ; attempt++) {
          try {
            const outcome = await store.append(stream, batch, { expectedVersion: version });
            if (outcome.alreadyStored) alreadyStored++;
            if (attempt > 0) retried++;
            version = outcome.nextExpectedVersion;
            acked.push({ stream, ids: batch.map((e) => e.id), version });
            ackTimes.push({ stream, at: Date.now() });
            break;
          } catch (error) {
            const kind = `${(error as Error).name}: ${(error as Error).message.replace(/\d+/g, 'N').slice(0, 120)}`;
            failures.set(kind, (failures.get(kind) ?? 0) + 1);
            if (error instanceof ExpectedVersionConflictError) {
              unresolved.push(`${stream}@${version}: ${(error as Error).message}`); // our own retry resolves as alreadyStored
              return;
            }
            if (Date.now() - firstTry > 120_000) {
              unresolved.push(`${stream}@${version}: still failing after 120 s: ${(error as Error).message}`);
              return;
            }
            await sleep(200);
          }
        }
      }
    });

    // The read model: a live subscription; a supervisor starts it again from its checkpoint if it stops on an error.
    const deliveries = new Map<string, number>();
    const subscriptionErrors: string[] = [];
    const onEvent = (e: { id: string }): void => {
      deliveries.set(e.id, (deliveries.get(e.id) ?? 0) + 1);
    };
    let subscription = store.subscribe({ group: 'readmodel', handler: onEvent });
    const supervisor = (async () => {
      for (;;) {
        try {
          await subscription.done;
          return;
        } catch (error) {
          subscriptionErrors.push((error as Error).message.replace(/\d+/g, 'N').slice(0, 160));
          await sleep(500);
          subscription = store.subscribe({ group: 'readmodel', handler: onEvent });
        }
      }
    })();

    const allStreamsAckedAfter = async (since: number, timeoutMs: number): Promise<number> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const firsts = streams.map((s) => ackTimes.find((a) => a.stream === s && a.at > since)?.at);
        if (firsts.every((f) => f !== undefined)) return Math.max(...(firsts as number[]));
        if (Date.now() > deadline || unresolved.length > 0) {
          throw new Error(
            `streams without an ack within ${timeoutMs} ms: ${streams.filter((_, i) => firsts[i] === undefined).join(', ')}; failures: ${JSON.stringify([...failures])}; unresolved: ${unresolved.join(' | ')}`,
          );
        }
        await sleep(100);
      }
    };

    try {
      await allStreamsAckedAfter(0, 60_000);
      await sleep(2000);
      for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
        const before = acked.length;
        const stopAt = Date.now();
        await b.stop(signal);
        const downAt = Date.now();
        await sleep(1000); // appends fail meanwhile
        await b.start();
        const upAt = Date.now();
        const recoveredAt = await allStreamsAckedAfter(upAt, 120_000);
        t.diagnostic(
          `${signal}: ${before} appends acknowledged before; broker down in ${downAt - stopAt} ms, serving again ${upAt - downAt} ms later; every stream appending again ${recoveredAt - upAt} ms after it served`,
        );
        await sleep(2000);
      }
      stopping = true;
      await Promise.all(writers);
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await subscription.caughtUp();
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(500);
        }
      }
    } finally {
      stopping = true;
      await Promise.race([
        (async () => {
          await Promise.allSettled(writers);
          await subscription.stop().catch(() => undefined);
          await supervisor;
          await store.close();
        })(),
        sleep(30_000),
      ]);
    }

    // What the log holds, read by a fresh store.
    const reader = createEventStore({ driver: pulsar(options), events });
    const stored: { id: string; stream: string; version: number }[] = [];
    for await (const e of reader.readAll()) stored.push({ id: e.id, stream: e.streamId, version: e.version });
    const versions = new Map<string, number[]>();
    for (const stream of streams) {
      const list: number[] = [];
      for await (const e of reader.readStream(stream)) list.push(e.version);
      versions.set(stream, list);
    }
    await reader.close();

    const byId = new Map(stored.map((e) => [e.id, e]));
    const ackedIds = acked.flatMap((a) => a.ids);
    const lost = ackedIds.filter((id) => !byId.has(id)).length;
    const duplicated = stored.length - byId.size;
    const unacknowledgedVisible = stored.filter((e) => !ackedIds.includes(e.id)).length;
    const missed = stored.filter((e) => !deliveries.has(e.id)).length;
    const redelivered = [...deliveries.values()].filter((n) => n > 1).length;
    t.diagnostic(
      `appends acknowledged ${acked.length} (${retried} after retries, ${alreadyStored} resolved as alreadyStored); events stored ${stored.length}: lost=${lost} duplicated=${duplicated} unacknowledged-visible=${unacknowledgedVisible}; ` +
        `subscription delivered ${deliveries.size} (${redelivered} more than once), missed ${missed}, restarted ${subscriptionErrors.length}× [${[...new Set(subscriptionErrors)].join(' | ')}]; background errors ${backgroundErrors.length}`,
    );
    t.diagnostic(
      `append failures during the outages: ${failures.size === 0 ? 'none' : [...failures].map(([k, n]) => `${n}× ${k}`).join(' | ')}`,
    );

    assert.deepEqual(unresolved, [], 'every append eventually succeeded');
    assert.ok(acked.length > 0);
    assert.equal(lost, 0, 'no acknowledged event lost');
    assert.equal(duplicated, 0, 'no event stored twice');
    // An append whose retry was still running when the writers stopped may be stored unacknowledged; after `await writers`, none is.
    assert.equal(unacknowledgedVisible, 0, 'every stored event was acknowledged');
    for (const a of acked) {
      const last = byId.get(a.ids[a.ids.length - 1]!);
      assert.equal(last?.version, a.version, `${a.stream}: stored at the version acknowledged`);
    }
    for (const [stream, list] of versions) {
      assert.deepEqual(
        list,
        list.map((_, i) => i + 1),
        `${stream}: versions 1..n, no gap`,
      );
    }
    assert.equal(missed, 0, 'the subscription delivered every stored event');
  });
});
