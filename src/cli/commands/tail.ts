import { Command } from 'commander';
import { type CommandFactory, runCommand, UsageError } from '../context.ts';
import { Decoder } from '../events-module.ts';
import { count, eventJson, eventRow, positiveInt } from '../format.ts';

interface TailOptions {
  readonly from: string;
  readonly limit?: number;
  readonly pollMs: number;
}

const PAGE = 500;

/**
 * `eventfold tail`: events as they are appended, from every partition, until Ctrl-C (SIGINT,
 * or SIGTERM) stops it cleanly (exit 0) or `--limit` events were shown. Waits with the
 * driver's blocking read where it has one, else polls. Positions are this process's own: a
 * tail is no group and saves nothing.
 */
export const tailCommand: CommandFactory = (io, done) =>
  new Command('tail')
    .description('follow new events live (Ctrl-C stops)')
    .option('--from <where>', 'now | beginning | an ISO time', 'now')
    .option('--limit <n>', 'stop after this many events', positiveInt)
    .option('--poll-ms <ms>', 'longest wait between two looks for new events', positiveInt, 500)
    .action(async (options: TailOptions, command: Command) =>
      done(
        await runCommand(command, io, async (ctx) => {
          const start = parseStart(options.from);
          const decoder = new Decoder(await ctx.definitions());
          const inspector = await ctx.inspector();
          const { out } = ctx;
          const stop = new AbortController();
          const onSignal = () => stop.abort();
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          try {
            const positions: (bigint | undefined)[] = [];
            for (let partition = 0; partition < inspector.partitions; partition++) {
              positions.push(
                start === 'now'
                  ? await inspector.head(partition)
                  : start === 'beginning'
                    ? undefined
                    : await inspector.offsetAfterEventsBefore(partition, start),
              );
            }
            out.note(out.style('dim', `tailing ${inspector.url} from ${options.from} (Ctrl-C stops)`));
            let shown = 0;
            while (!stop.signal.aborted) {
              let read = 0;
              for (let partition = 0; partition < inspector.partitions && !stop.signal.aborted; partition++) {
                const page = await inspector.readPartition(partition, positions[partition], PAGE);
                for (const stored of page) {
                  const e = decoder.show(stored);
                  if (out.json) out.jsonLine(eventJson(e));
                  else out.line(eventRow(out, e, true).join('  '));
                  positions[partition] = stored.position.offset;
                  read++;
                  shown++;
                  if (options.limit !== undefined && shown >= options.limit) return 0;
                }
              }
              if (read === 0) {
                const after = positions.flatMap((offset, partition) => (offset === undefined ? [] : [{ partition, offset }]));
                await inspector.waitForEvents(after, stop.signal, options.pollMs);
              }
            }
            out.note(out.style('dim', `stopped after ${count(shown, 'event')}`));
            return 0;
          } finally {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
          }
        }),
      ),
    );

function parseStart(text: string): 'now' | 'beginning' | number {
  if (text === 'now' || text === 'beginning') return text;
  const time = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(time)) throw new UsageError(`--from ${JSON.stringify(text)} is none of: now, beginning, an ISO time`);
  return time;
}
