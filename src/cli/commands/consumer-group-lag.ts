import type { Context } from '../context.ts';
import { count } from '../format.ts';
import { lagOf } from '../lag.ts';

/**
 * `eventfold groups --consumer-group <group…>`: where native consumer groups (`store.consume`)
 * are in each partition, from the backend (`ConsumerGroupDriver.describeGroup`): the offset up
 * to which the group has taken events, the events stored after it (LAG, counted by reading
 * them), and those taken but not yet acknowledged (PENDING, where the backend keeps them apart).
 * Returns 1 when a named group does not exist.
 */
export async function showConsumerGroups(ctx: Context, groups: readonly string[]): Promise<number> {
  const inspector = await ctx.inspector();
  const heads = await inspector.heads();
  const progress = ctx.progress();
  const { out } = ctx;
  const rows: string[][] = [];
  let missing = 0;
  for (const group of groups) {
    const described = await inspector.describeConsumerGroup(group);
    if (described === undefined) {
      out.note(`no consumer group "${group}" in this store`);
      missing++;
      continue;
    }
    const saved = described.flatMap((p) => (p.position === undefined ? [] : [{ partition: p.partition, offset: p.position }]));
    const lags = await lagOf(inspector, saved, heads, (n) => progress.update(() => `groups: ${group}: ${count(n, 'event')} behind…`));
    progress.done();
    const pendingOf = (partition: number) => described.find((p) => p.partition === partition)?.pending;
    if (out.json) {
      out.jsonLine({
        group,
        consumerGroup: true,
        lag: lags.reduce((n, l) => n + l.lag, 0),
        partitions: lags.map((l) => ({
          partition: l.partition,
          position: l.position?.toString() ?? null,
          head: l.head?.toString() ?? null,
          lag: l.lag,
          pending: pendingOf(l.partition) ?? null,
        })),
      });
      continue;
    }
    for (const l of lags) {
      const lag = l.lag > 0 ? out.style('yellow', String(l.lag)) : '0';
      rows.push([
        group,
        String(l.partition),
        l.position?.toString() ?? '-',
        l.head?.toString() ?? '-',
        lag,
        String(pendingOf(l.partition) ?? '-'),
      ]);
    }
  }
  if (!out.json && rows.length > 0) {
    out.table(
      [
        { header: 'CONSUMER GROUP' },
        { header: 'PARTITION', align: 'right' },
        { header: 'POSITION', align: 'right' },
        { header: 'LAST OFFSET', align: 'right' },
        { header: 'LAG', align: 'right' },
        { header: 'PENDING', align: 'right' },
      ],
      rows,
    );
  }
  return missing > 0 ? 1 : 0;
}
