import { Command } from 'commander';
import type { DeadLetter } from '../../core/driver.ts';
import { assertGroupName } from '../../core/group-name.ts';
import { type CommandFactory, EXIT, runCommand } from '../context.ts';
import { Decoder } from '../events-module.ts';
import { count, eventJson, positiveInt } from '../format.ts';
import { toJson } from '../output.ts';

interface ListOptions {
  readonly limit: number;
}

/**
 * `eventfold dlq list|show|redrive <group>`: the dead letters of a native consumer group
 * (`store.consume`; Redis and Kafka), through the driver's `listDeadLetters` and `redrive`.
 * A backend without native consumer groups (SQLite) has none: a usage error saying so.
 */
export const dlqCommand: CommandFactory = (io, done) => {
  const dlq = new Command('dlq').description("a native consumer group's dead letters: list, show, redrive");
  dlq.addCommand(
    new Command('list')
      .description('dead letters of a group: id, stream, version, type, deliveries, reason')
      .argument('<group>', 'the consumer group')
      .option('--limit <n>', 'most dead letters to list', positiveInt, 100)
      .action(async (group: string, options: ListOptions, command: Command) =>
        done(
          await runCommand(command, io, async (ctx) => {
            assertGroupName(group);
            const inspector = await ctx.inspector();
            const letters = await inspector.deadLetters(group, options.limit);
            const { out } = ctx;
            if (out.json) {
              for (const l of letters) out.jsonLine(summary(l));
              return 0;
            }
            if (letters.length === 0) {
              out.note(`group "${group}" has no dead letters`);
              return 0;
            }
            out.table(
              [
                { header: 'ID' },
                { header: 'STREAM' },
                { header: 'VERSION', align: 'right' },
                { header: 'TYPE' },
                { header: 'DELIVERIES', align: 'right' },
                { header: 'DEAD AT' },
                { header: 'REASON' },
              ],
              letters.map((l) => [
                l.id,
                l.event.streamId,
                String(l.event.version),
                l.event.type,
                String(l.deliveries),
                new Date(l.deadAt).toISOString(),
                l.reason,
              ]),
            );
            return 0;
          }),
        ),
      ),
  );
  dlq.addCommand(
    new Command('show')
      .description('one dead letter with its event (decoded with --events, raw otherwise)')
      .argument('<group>', 'the consumer group')
      .argument('<id>', 'the dead letter id, as `dlq list` shows it')
      .option('--limit <n>', 'dead letters to look through for the id', positiveInt, 10_000)
      .action(async (group: string, id: string, options: ListOptions, command: Command) =>
        done(
          await runCommand(command, io, async (ctx) => {
            assertGroupName(group);
            const inspector = await ctx.inspector();
            const letter = (await inspector.deadLetters(group, options.limit)).find((l) => l.id === id);
            const { out } = ctx;
            if (!letter) {
              out.note(`group "${group}" has no dead letter ${id} (among the first ${options.limit})`);
              return EXIT.failure;
            }
            const event = eventJson(new Decoder(await ctx.definitions()).show(letter.event));
            const shown = { ...summary(letter), event };
            if (out.json) out.jsonLine(shown);
            else out.line(JSON.stringify(JSON.parse(toJson(shown)), null, 2));
            return 0;
          }),
        ),
      ),
  );
  dlq.addCommand(
    new Command('redrive')
      .description("hand dead letters back to the group's consumers (all, or those ids)")
      .argument('<group>', 'the consumer group')
      .argument('[ids...]', 'dead letter ids (default: all)')
      .action(async (group: string, ids: string[], _options: unknown, command: Command) =>
        done(
          await runCommand(command, io, async (ctx) => {
            assertGroupName(group);
            const inspector = await ctx.inspector();
            const n = await inspector.redrive(group, ids.length === 0 ? undefined : ids);
            if (ctx.out.json) ctx.out.jsonLine({ group, redriven: n });
            else ctx.out.line(`${count(n, 'dead letter')} of group "${group}" handed back to its consumers`);
            return 0;
          }),
        ),
      ),
  );
  return dlq;
};

function summary(l: DeadLetter): Record<string, unknown> {
  return {
    id: l.id,
    streamId: l.event.streamId,
    version: l.event.version,
    type: l.event.type,
    deliveries: l.deliveries,
    deadAt: new Date(l.deadAt).toISOString(),
    reason: l.reason,
  };
}
