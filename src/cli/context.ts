import type { Command } from 'commander';
import { errorMessage, EventfoldError, InvalidArgumentError } from '../core/errors.ts';
import { type EventDefinitions, loadEventDefinitions } from './events-module.ts';
import { Inspector } from './inspector.ts';
import { createOutput, type Output, type Streams } from './output.ts';
import { Progress } from './progress.ts';

/** Exit codes: 0 ok, 1 a failure found (or the store failed), 2 a usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** What the command line got wrong (exit 2), as opposed to what the store has wrong (exit 1). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CliIo extends Streams {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** A command: its definition, whose action reports its exit code through `done`. */
export type CommandFactory = (io: CliIo, done: (code: number) => void) => Command;

/** The options every command takes (set before or after the command name). */
export interface GlobalOptions {
  readonly url?: string;
  readonly json?: boolean;
  readonly events?: string;
  /** `--no-color` sets it false; `--color` forces it on. */
  readonly color?: boolean;
}

/** What a command runs with: its output, and the store and event definitions, opened on demand. */
export class Context {
  readonly out: Output;
  readonly io: CliIo;
  readonly options: GlobalOptions;
  #inspector: Promise<Inspector> | undefined;
  #definitions: Promise<EventDefinitions | undefined> | undefined;

  constructor(io: CliIo, options: GlobalOptions) {
    this.io = io;
    this.options = options;
    this.out = createOutput(io, { json: options.json === true, colour: colourOption(options.color), env: io.env });
  }

  /** The store named by `--url`, else `EVENTFOLD_URL`. */
  inspector(): Promise<Inspector> {
    this.#inspector ??= (async () => {
      const url = this.options.url ?? nonEmpty(this.io.env['EVENTFOLD_URL']);
      if (url === undefined) {
        throw new UsageError('no store given: pass --url <connection-url> or set EVENTFOLD_URL (e.g. sqlite:./events.db)');
      }
      return Inspector.open(url, this.io.env);
    })();
    return this.#inspector;
  }

  /** The user's event types from `--events`, or undefined without it. */
  definitions(): Promise<EventDefinitions | undefined> {
    this.#definitions ??=
      this.options.events === undefined ? Promise.resolve(undefined) : loadEventDefinitions(this.options.events, this.io.cwd);
    return this.#definitions;
  }

  async requireDefinitions(command: string): Promise<EventDefinitions> {
    const definitions = await this.definitions();
    if (!definitions) throw new UsageError(`${command} needs --events <file>: a module exporting your event types`);
    return definitions;
  }

  /** A stderr status line for long scans, shown only on a terminal (never in pipes or --json). */
  progress(): Progress {
    const tty = (this.io.stderr as NodeJS.WriteStream).isTTY === true;
    return new Progress(this.io.stderr, tty && !this.out.json);
  }

  async close(): Promise<void> {
    const inspector = await this.#inspector?.catch(() => undefined);
    await inspector?.close();
  }
}

/** `--color` true, `--no-color` false; neither: undefined (colour when stdout is a terminal). */
function colourOption(value: boolean | undefined): boolean | undefined {
  // Commander's `--no-color` defaults the value to true, so only an explicit flag says anything.
  return value === false ? false : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/**
 * Runs a command's body with a fresh context and returns its exit code: what it returned, 2
 * for a usage error (or an invalid argument: a URL, a stream name, an events module), 1 for any other error (its message on
 * stderr, never a stack: the messages are written for people).
 */
export async function runCommand(command: Command, io: CliIo, body: (ctx: Context) => Promise<number | undefined>): Promise<number> {
  const ctx = new Context(io, command.optsWithGlobals<GlobalOptions>());
  try {
    return (await body(ctx)) ?? EXIT.ok;
  } catch (error) {
    // The core's argument errors here come from what was typed: a stream name, a URL, a cursor.
    const usage = error instanceof UsageError || error instanceof InvalidArgumentError;
    const message = error instanceof EventfoldError || error instanceof UsageError ? error.message : errorMessage(error);
    io.stderr.write(`${ctx.out.style('red', 'error:')} ${message}\n`);
    return usage ? EXIT.usage : EXIT.failure;
  } finally {
    await ctx.close().catch((error: unknown) => io.stderr.write(`error while closing: ${errorMessage(error)}\n`));
  }
}
