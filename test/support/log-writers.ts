// Writer processes for the multi-process tests of the log backends (Kafka, Pulsar): each runs
// log-writer-worker.ts against one shared stream; the checks below count what was lost or
// stored twice. Both backends' tests use these, so the two races are the same race.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import type { KafkaDriverOptions } from '../../src/backends/kafka/index.ts';
import type { PulsarDriverOptions } from '../../src/backends/pulsar/index.ts';

/** How a worker opens its driver (JSON on its command line). */
export type LogWriterDriver =
  | { readonly backend: 'kafka'; readonly options: KafkaDriverOptions }
  | { readonly backend: 'pulsar'; readonly options: PulsarDriverOptions };

export interface WriterAck {
  readonly version: number;
  readonly id: string;
  /** Date.now() in the worker when the append was acknowledged. */
  readonly at: number;
}

export interface WriterRun {
  readonly child: ChildProcess;
  readonly done: Promise<{ acks: WriterAck[]; summary: { conflicts: number; fenced: number } }>;
}

/** A writer without an ack at `stopAt` may go on this much longer for its first one. */
export const LAST_CHANCE_MS = 20_000;

const worker = new URL('./log-writer-worker.ts', import.meta.url).pathname;

export function startWriter(driver: LogWriterDriver, name: string, startAt: number, stopAt: number): WriterRun {
  const args = [worker, JSON.stringify(driver), name, String(startAt), String(stopAt), String(stopAt + LAST_CHANCE_MS)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<Awaited<WriterRun['done']>>((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`worker ${name} exited ${code}: ${err}`));
      const lines = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const summary = lines.pop() as { conflicts: number; fenced: number };
      resolve({ acks: lines as unknown as WriterAck[], summary });
    });
  });
  return { child, done };
}

/** Versions 1..n without gaps, nothing stored twice, and every ack stored as acknowledged. */
export function assertNoLossNoDuplicates(stored: readonly { version: number; id: string }[], acks: readonly WriterAck[]): void {
  assert.deepEqual(
    stored.map((e) => e.version),
    stored.map((_, i) => i + 1),
    'versions are 1..n without gaps',
  );
  assert.equal(new Set(stored.map((e) => e.id)).size, stored.length, 'no event stored twice');
  const ackedVersions = acks.map((a) => a.version).sort((a, b) => a - b);
  assert.equal(new Set(ackedVersions).size, ackedVersions.length, 'no version acknowledged to two writers');
  const byVersion = new Map(stored.map((e) => [e.version, e.id]));
  for (const a of acks)
    assert.equal(byVersion.get(a.version), a.id, `acknowledged version ${a.version} is stored as acknowledged (nothing lost)`);
  assert.equal(acks.length, stored.length, 'every stored event was acknowledged to exactly one writer');
}

/** `acks/conflicts/gave-up-fenced` of each run, for messages. */
export function writerFigures(runs: readonly Awaited<WriterRun['done']>[]): string {
  return runs.map((r) => `${r.acks.length}/${r.summary.conflicts}/${r.summary.fenced}`).join(', ');
}
