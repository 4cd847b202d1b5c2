import { Command } from 'commander';
import { assertGroupName } from '../../core/group-name.ts';
import { type CommandFactory, runCommand, UsageError } from '../context.ts';
import { count } from '../format.ts';
import type { Inspector } from '../inspector.ts';

interface PartitionLag {
  readonly partition: number;
  /** Last processed offset; undefined: none saved (the group starts at the beginning). */
  readonly position: bigint | undefined;
  readonly head: bigint | undefined;
  /** Events after the position, up to the head. */
  readonly lag: number;
}

/**
 * `eventfold groups [group…]`: the saved position of subscription groups (`store.subscribe`)
 * in each partition, the partition's last offset, and the lag: how many events are stored
 * after the position (counted by reading them, since offsets may have gaps). Groups come from
 * the backend where it can list them (SQLite, Redis), else from the command line.
 *
 * Native consumer groups (`store.consume`: Redis XREADGROUP, Kafka groups) keep their
 * positions in the broker, and the driver contract has no read of them: they are not shown.
 */
export const groupsCommand: CommandFactory = (io, done) =>
  new Command('groups')
    .description('positions and lag per partition of subscription groups (store.subscribe)')
    .argument('[group...]', 'groups to show (default: every group with a saved position, where the backend can list them)')
    .action(async (names: string[], _options: unknown, command: Command) =>
      done(
        await runCommand(command, io, async (ctx) => {
          const inspector = await ctx.inspector();
          for (const n of names) assertGroupName(n);
          if (names.length === 0 && !inspector.listsGroups) {
            throw new UsageError(`the ${inspector.backend} backend cannot list its groups: name them (eventfold groups <group>…)`);
          }
          const groups = names.length > 0 ? names : (await inspector.listGroups()).sort();
          const heads = await inspector.heads();
          const progress = ctx.progress();
          const { out } = ctx;
          const rows: string[][] = [];
          for (const group of groups) {
            const saved = await inspector.checkpoint(group);
            const lags = await lagOf(inspector, saved, heads, (n) =>
              progress.update(() => `groups: ${group}: ${count(n, 'event')} behind…`),
            );
            progress.done();
            const total = lags.reduce((n, l) => n + l.lag, 0);
            if (out.json) {
              out.jsonLine({
                group,
                saved: saved !== undefined,
                lag: total,
                partitions: lags.map((l) => ({
                  partition: l.partition,
                  position: l.position?.toString() ?? null,
                  head: l.head?.toString() ?? null,
                  lag: l.lag,
                })),
              });
              continue;
            }
            for (const l of lags) {
              const lag = l.lag > 0 ? out.style('yellow', String(l.lag)) : '0';
              rows.push([group, String(l.partition), l.position?.toString() ?? '-', l.head?.toString() ?? '-', lag]);
            }
            if (saved === undefined) out.note(`group "${group}" has no saved position: it would start from the beginning`);
          }
          if (!out.json) {
            if (groups.length === 0) out.note('no subscription group has a saved position');
            else
              out.table(
                [
                  { header: 'GROUP' },
                  { header: 'PARTITION', align: 'right' },
                  { header: 'POSITION', align: 'right' },
                  { header: 'LAST OFFSET', align: 'right' },
                  { header: 'LAG', align: 'right' },
                ],
                rows,
              );
          }
          return 0;
        }),
      ),
    );

async function lagOf(
  inspector: Inspector,
  saved: readonly { partition: number; offset: bigint }[] | undefined,
  heads: readonly (bigint | undefined)[],
  onCount: (n: number) => void,
): Promise<PartitionLag[]> {
  const out: PartitionLag[] = [];
  let counted = 0;
  for (let partition = 0; partition < heads.length; partition++) {
    const position = saved?.find((p) => p.partition === partition)?.offset;
    const head = heads[partition];
    let lag = 0;
    if (head !== undefined && (position === undefined || position < head)) {
      for await (const _ of inspector.scanPartition(partition, position, head)) {
        lag++;
        onCount(++counted);
      }
    }
    out.push({ partition, position, head, lag });
  }
  return out;
}
