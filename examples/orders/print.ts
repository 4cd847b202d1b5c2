// Console output for the demo: numbered steps, indented details, one line per event.
import type { RecordedEvent } from '../../src/index.ts';

let stepNumber = 0;

/** Starts a numbered step. */
export function step(title: string): void {
  stepNumber++;
  console.log(`\n${stepNumber}. ${title}`);
}

/** The number of the step being run (for the failure message). */
export function currentStep(): number {
  return stepNumber;
}

/** One indented line under the current step. */
export function say(line: string): void {
  console.log(`   ${line}`);
}

export function money(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}

/** `2025-06-02 09:10` in UTC, so the output is the same on every machine. */
export function clockTime(time: Date): string {
  return time.toISOString().slice(0, 16).replace('T', ' ');
}

/** `order-1001 v2  09:10  InventoryReserved  {"warehouse":"north"}` */
export function eventLine(event: RecordedEvent): string {
  const data = JSON.stringify(event.data);
  return `${event.streamId} v${event.version}  ${clockTime(event.time).slice(11)}  ${event.type.padEnd(17)} ${data.length > 70 ? `${data.slice(0, 67)}...` : data}`;
}

/** A small fixed-width table. */
export function table(rows: readonly Record<string, string | number | null>[]): void {
  const first = rows[0];
  if (!first) return;
  const columns = Object.keys(first);
  const width = (c: string): number => Math.max(c.length, ...rows.map((r) => String(r[c]).length));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(width(columns[i]!))).join('  ');
  say(line(columns));
  for (const row of rows) say(line(columns.map((c) => String(row[c]))));
}
