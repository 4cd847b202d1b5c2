import { Command } from 'commander';
import { type CommandFactory, runCommand } from '../context.ts';
import { positiveInt } from '../format.ts';

interface StreamsOptions {
  readonly limit: number;
  readonly after?: string;
}

/**
 * `eventfold streams [--limit 100] [--after <cursor>]`: one page of the store's streams and
 * their versions, in the backend's order; the cursor of the next page goes to stderr (tables) or
 * as a last `{"cursor": …}` line (JSON). On a log without a stream list of its own (Kafka) a
 * page is a whole partition, whatever the limit.
 */
export const streamsCommand: CommandFactory = (io, done) =>
  new Command('streams')
    .description('list streams with their current versions, a page at a time')
    .option('--limit <n>', 'streams per page (about: a backend may return a few more)', positiveInt, 100)
    .option('--after <cursor>', 'the cursor a previous page printed: the page after it')
    .action(async (options: StreamsOptions, command: Command) =>
      done(
        await runCommand(command, io, async (ctx) => {
          const inspector = await ctx.inspector();
          const page = await inspector.listStreams(options.after, options.limit);
          const { out } = ctx;
          if (out.json) {
            for (const s of page.streams) out.jsonLine(s);
            if (page.cursor !== undefined) out.jsonLine({ cursor: page.cursor });
            return 0;
          }
          out.table(
            [{ header: 'STREAM' }, { header: 'PARTITION', align: 'right' }, { header: 'VERSION', align: 'right' }],
            page.streams.map((s) => [s.streamId, String(s.partition), String(s.version)]),
          );
          if (page.cursor !== undefined) out.note(out.style('dim', `more: eventfold streams --after ${quote(page.cursor)}`));
          return 0;
        }),
      ),
    );

/** A cursor as a shell word (Redis cursors are digits and a colon; quote anything else). */
function quote(text: string): string {
  return /^[\w:.,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
