import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { dlqCommand } from './commands/dlq.ts';
import { groupsCommand } from './commands/groups.ts';
import { replayCommand } from './commands/replay.ts';
import { schemaCommand } from './commands/schema.ts';
import { showCommand } from './commands/show.ts';
import { statsCommand } from './commands/stats.ts';
import { streamsCommand } from './commands/streams.ts';
import { tailCommand } from './commands/tail.ts';
import { type CliIo, type CommandFactory, EXIT } from './context.ts';

const COMMANDS: readonly CommandFactory[] = [
  streamsCommand,
  showCommand,
  statsCommand,
  groupsCommand,
  tailCommand,
  replayCommand,
  dlqCommand,
  schemaCommand,
];

/** Runs `eventfold <argv…>` and returns the exit code (0 ok, 1 failure found, 2 usage). */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  const done = (c: number) => {
    code = c;
  };
  const program = new Command('eventfold')
    .description('Look inside an eventfold store: streams, events, groups, dead letters, schema versions.')
    .version(version(), '-V, --version')
    .option(
      '--url <connection-url>',
      'the store (default: $EVENTFOLD_URL): sqlite:./events.db, redis://127.0.0.1:6379?prefix=shop&partitions=16, kafka://127.0.0.1:9092?prefix=shop',
    )
    .option('--json', 'JSON lines on stdout instead of tables')
    .option('--events <file>', 'a module exporting your event types (defineEvent): decode, upcast and validate with them')
    .option('--no-color', 'no colour even on a terminal (also NO_COLOR=1)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
    });
  // Subcommands inherit exitOverride and the output only when added after them: add them here.
  for (const factory of COMMANDS) program.addCommand(inherit(program, factory(io, done)));
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // --help and --version exit 0; anything commander refuses is a usage error.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  return code;
}

function inherit(program: Command, command: Command): Command {
  command.copyInheritedSettings(program);
  for (const sub of command.commands) inherit(command, sub);
  return command;
}

function version(): string {
  // package.json is two levels up from both src/cli/ and dist/cli/.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
