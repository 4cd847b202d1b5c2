import { Command } from 'commander';
import type { Position } from '../../core/driver.ts';
import { assertGroupName } from '../../core/group-name.ts';
import { type CommandFactory, runCommand, UsageError } from '../context.ts';
import { formatPosition } from '../format.ts';
import type { Inspector } from '../inspector.ts';

interface ReplayOptions {
  readonly from: string;
  readonly consumerGroup?: boolean;
}

/**
 * `eventfold replay <group> --from beginning|end|<ISO time>|<position>`: moves a subscription
 * group's saved position (through the core's `SubscriptionPositions`) so its subscribers
 * process again from there, inclusive: from the first event at or after a time, or from the
 * event at a position (`0:42,1:17`, or `42` on a one-partition store). With
 * `--consumer-group`, a native consumer group instead (`store.consume`), which the driver
 * contract can move only to the beginning or the end (`resetGroup`).
 */
export const replayCommand: CommandFactory = (io, done) =>
  new Command('replay')
    .description('move a group so it processes again from the beginning, a time or a position')
    .argument('<group>', 'the group name')
    .requiredOption('--from <where>', 'beginning | end | an ISO time (2025-06-02T09:00:00Z) | a position (0:42,1:17, or 42)')
    .option('--consumer-group', 'a native consumer group (store.consume), not a subscription group: --from beginning|end only')
    .action(async (group: string, options: ReplayOptions, command: Command) =>
      done(
        await runCommand(command, io, async (ctx) => {
          assertGroupName(group);
          const from = parseFrom(options.from);
          const inspector = await ctx.inspector();
          const { out } = ctx;
          if (options.consumerGroup) {
            if (from.kind !== 'beginning' && from.kind !== 'end') {
              throw new UsageError(
                'a native consumer group can be moved only to the beginning or the end (the driver contract has no seek to a time or position)',
              );
            }
            await inspector.resetConsumerGroup(group, from.kind);
            if (out.json) out.jsonLine({ group, consumerGroup: true, to: from.kind });
            else out.line(`consumer group "${group}" moved to the ${from.kind}`);
            return 0;
          }
          const before = (await inspector.checkpoint(group)) ?? [];
          const positions = await positionsFor(inspector, from);
          await inspector.subscriptions.seek(group, positions);
          if (out.json) out.jsonLine({ group, before: before.map(formatPosition), after: positions.map(formatPosition) });
          else {
            out.line(`group "${group}": ${describe(before)} -> ${describe(positions)}`);
            out.note(
              out.style(
                'dim',
                'a subscriber of this group running now saves its own position over this one: stop them first, restart after',
              ),
            );
          }
          return 0;
        }),
      ),
    );

type From =
  | { kind: 'beginning' }
  | { kind: 'end' }
  | { kind: 'time'; time: number }
  | { kind: 'position'; offsets: readonly { partition: number | undefined; offset: bigint }[] };

function parseFrom(text: string): From {
  if (text === 'beginning' || text === 'end') return { kind: text };
  if (/^\d+$/.test(text)) return { kind: 'position', offsets: [{ partition: undefined, offset: BigInt(text) }] };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(text)) {
    const offsets = text.split(',').map((p) => {
      const [partition, offset] = p.split(':') as [string, string];
      return { partition: Number(partition), offset: BigInt(offset) };
    });
    return { kind: 'position', offsets };
  }
  const time = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new UsageError(`--from ${JSON.stringify(text)} is none of: beginning, end, an ISO time, a position such as 0:42`);
  }
  return { kind: 'time', time };
}

/** The position vector to save: processing resumes after each offset (a partition left out starts at its beginning). */
async function positionsFor(inspector: Inspector, from: From): Promise<Position[]> {
  switch (from.kind) {
    case 'beginning':
      return [];
    case 'end': {
      const heads = await inspector.heads();
      return heads.flatMap((offset, partition) => (offset === undefined ? [] : [{ partition, offset }]));
    }
    case 'position': {
      const out: Position[] = [];
      for (const { partition: p, offset } of from.offsets) {
        if (p === undefined && inspector.partitions !== 1) {
          throw new UsageError(`the store has ${inspector.partitions} partitions: give partition:offset pairs (0:42,1:17)`);
        }
        const partition = p ?? 0;
        if (partition >= inspector.partitions) throw new UsageError(`the store has no partition ${partition}`);
        // The event at the offset is processed again: resume after the offset before it.
        if (offset > 0n) out.push({ partition, offset: offset - 1n });
      }
      return out;
    }
    case 'time': {
      const out: Position[] = [];
      for (let partition = 0; partition < inspector.partitions; partition++) {
        const after = await inspector.offsetAfterEventsBefore(partition, from.time);
        if (after !== undefined) out.push({ partition, offset: after });
      }
      return out;
    }
  }
}

function describe(positions: readonly Position[]): string {
  return positions.length === 0 ? 'the beginning' : `after ${positions.map(formatPosition).join(',')}`;
}
