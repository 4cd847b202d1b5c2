import { styleText } from 'node:util';

/** Where a command writes: aligned tables for people (colour only on a TTY), JSON for scripts. */
export interface Output {
  readonly json: boolean;
  readonly colour: boolean;
  /** Terminal width when stdout is a TTY, else undefined (nothing is cut). */
  readonly width: number | undefined;
  line(text: string): void;
  /** One JSON value on one line; bigints as strings. */
  jsonLine(value: unknown): void;
  /** Notes for people (progress, "more with --cursor …"), on stderr so stdout stays data. */
  note(text: string): void;
  table(columns: readonly Column[], rows: readonly (readonly string[])[]): void;
  style(format: 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan', text: string): string;
}

export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

export interface Streams {
  readonly stdout: NodeJS.WriteStream | NodeJS.WritableStream;
  readonly stderr: NodeJS.WriteStream | NodeJS.WritableStream;
}

export function createOutput(streams: Streams, options: { json: boolean; colour: boolean | undefined; env: NodeJS.ProcessEnv }): Output {
  const tty = (streams.stdout as NodeJS.WriteStream).isTTY === true;
  const colour = options.colour ?? (tty && options.env['NO_COLOR'] === undefined && options.env['TERM'] !== 'dumb');
  const style: Output['style'] = (format, text) => (colour ? styleText(format, text, { validateStream: false }) : text);
  return {
    json: options.json,
    colour,
    width: tty ? (streams.stdout as NodeJS.WriteStream).columns : undefined,
    line: (text) => void streams.stdout.write(`${text}\n`),
    jsonLine: (value) => void streams.stdout.write(`${toJson(value)}\n`),
    note: (text) => void streams.stderr.write(`${text}\n`),
    table: (columns, rows) => {
      const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
      const cell = (text: string, i: number, last: boolean) => {
        const column = columns[i]!;
        if (last && column.align !== 'right') return text;
        return column.align === 'right' ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
      };
      const render = (cells: readonly string[]) => cells.map((c, i) => cell(c, i, i === cells.length - 1)).join('  ');
      streams.stdout.write(`${style('bold', render(columns.map((c) => c.header)))}\n`);
      for (const row of rows) streams.stdout.write(`${render(row)}\n`);
    },
    style,
  };
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** `text` cut to `width` characters with an ellipsis (no cut when width is undefined). */
export function fit(text: string, width: number | undefined): string {
  if (width === undefined || text.length <= width) return text;
  return width <= 1 ? '…' : `${text.slice(0, width - 1)}…`;
}
