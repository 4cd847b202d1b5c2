import { Command } from 'commander';
import { assertGroupName } from '../../core/group-name.ts';
import { type CommandFactory, runCommand, UsageError } from '../context.ts';
import { count } from '../format.ts';
import { lagOf } from '../lag.ts';
import { showConsumerGroups } from './consumer-group-lag.ts';

/**
 * `eventfold groups [group…]`: the saved position of subscription groups (`store.subscribe`)
 * in each partition, the partition's last offset, and the lag: how many events are stored
 * after the position (counted by reading them, since offsets may have gaps). Groups come from
 * the backend where it can list them (SQLite, Redis), else from the command line.
 *
 * `--consumer-group`: native consumer groups (`store.consume`) instead, named on the command
 * line (consumer-group-lag.ts).
 */
export const groupsCommand: CommandFactory = (io, done) =>
  new Command('groups')
    .description('positions and lag per partition of subscription groups (store.subscribe)')
    .argument('[group...]', 'groups to show (default: every group with a saved position, where the backend can list them)')
    .option('--consumer-group', 'native consumer groups (store.consume) instead, named: position, lag and pending per partition')
    .action(async (names: string[], options: { consumerGroup?: boolean }, command: Command) =>
      done(
        await runCommand(command, io, async (ctx) => {
          for (const n of names) assertGroupName(n);
          if (options.consumerGroup) {
            if (names.length === 0) throw new UsageError('name the consumer groups to show (eventfold groups --consumer-group <group>…)');
            return showConsumerGroups(ctx, names);
          }
          const inspector = await ctx.inspector();
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
