import { Command } from 'commander';
import { type CommandFactory, runCommand } from '../context.ts';
import { count } from '../format.ts';

/**
 * `eventfold stats`: streams and events in all, and per partition (with the partition's last
 * offset). Events are counted as the sum of stream versions (a stream at version n holds n
 * events), from the stream list: no scan of the events on backends that list streams.
 */
export const statsCommand: CommandFactory = (io, done) =>
  new Command('stats')
    .description('how many streams and events the store holds, in all and per partition')
    .action(async (_options: unknown, command: Command) =>
      done(
        await runCommand(command, io, async (ctx) => {
          const inspector = await ctx.inspector();
          const progress = ctx.progress();
          const partitions = Array.from({ length: inspector.partitions }, (_, partition) => ({
            partition,
            streams: 0,
            events: 0,
            head: undefined as bigint | undefined,
          }));
          let streams = 0;
          for await (const s of inspector.allStreams()) {
            const p = partitions[s.partition]!;
            p.streams++;
            p.events += s.version;
            streams++;
            progress.update(() => `stats: ${count(streams, 'stream')}…`);
          }
          progress.done();
          const heads = await inspector.heads();
          heads.forEach((head, i) => {
            partitions[i]!.head = head;
          });
          const events = partitions.reduce((n, p) => n + p.events, 0);
          const { out } = ctx;
          if (out.json) {
            out.jsonLine({
              backend: inspector.backend,
              url: inspector.url,
              streams,
              events,
              partitions: partitions.map((p) => ({ ...p, head: p.head?.toString() ?? null })),
            });
            return 0;
          }
          out.line(`${out.style('bold', inspector.url)} (${inspector.backend}, ${count(inspector.partitions, 'partition')})`);
          out.line(`${count(streams, 'stream')}, ${count(events, 'event')}`);
          out.line('');
          out.table(
            [
              { header: 'PARTITION', align: 'right' },
              { header: 'STREAMS', align: 'right' },
              { header: 'EVENTS', align: 'right' },
              { header: 'LAST OFFSET', align: 'right' },
            ],
            partitions.map((p) => [String(p.partition), String(p.streams), String(p.events), p.head?.toString() ?? '-']),
          );
          return 0;
        }),
      ),
    );
