import { Command } from 'commander';
import { count, EVENT_COLUMNS, eventJson, eventRow, positiveInt } from '../format.ts';
import { Decoder } from '../events-module.ts';
import { type CommandFactory, EXIT, runCommand } from '../context.ts';

interface ShowOptions {
  readonly fromVersion: number;
  readonly limit: number;
}

/**
 * `eventfold show <stream>`: the stream's events, as stored (raw JSON, or base64 for another
 * codec) or, with `--events`, decoded and upcast as the app reads them. Exit 1 when the stream
 * has no events, or when an event does not decode with the definitions given.
 */
export const showCommand: CommandFactory = (io, done) =>
  new Command('show')
    .description("a stream's events: a table, or JSON lines with --json; decoded with --events, raw otherwise")
    .argument('<stream>', 'the stream id, e.g. order-1001')
    .option('--from-version <n>', 'first version to show', positiveInt, 1)
    .option('--limit <n>', 'most events to show', positiveInt, 1000)
    .action(async (stream: string, options: ShowOptions, command: Command) =>
      done(
        await runCommand(command, io, async (ctx) => {
          const decoder = new Decoder(await ctx.definitions());
          const inspector = await ctx.inspector();
          const { out } = ctx;
          const rows: string[][] = [];
          let events = 0;
          let failed = 0;
          for await (const stored of inspector.readStream(stream, options.fromVersion, options.limit)) {
            const e = decoder.show(stored);
            events++;
            if (e.decoding === 'failed') failed++;
            if (out.json) out.jsonLine(eventJson(e));
            else rows.push(eventRow(out, e, false));
          }
          if (rows.length > 0) out.table(EVENT_COLUMNS, rows);
          if (events === 0) {
            const version = await inspector.streamVersion(stream);
            out.note(
              version === 0
                ? `stream "${stream}" has no events`
                : `stream "${stream}" is at version ${version}: nothing from version ${options.fromVersion}`,
            );
            return version === 0 ? EXIT.failure : EXIT.ok;
          }
          if (failed > 0) {
            out.note(out.style('red', `${count(failed, 'event')} did not decode with ${ctx.options.events}`));
            return EXIT.failure;
          }
          return EXIT.ok;
        }),
      ),
    );
