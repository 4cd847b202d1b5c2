import { InvalidArgumentError } from 'commander';
import type { Position } from '../core/driver.ts';
import type { ShownEvent } from './events-module.ts';
import { type Column, fit, type Output, toJson } from './output.ts';

/** Commander parser of `--limit 10`: a bad value is commander's usage error (exit 2). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

/** `0:41`: partition and offset, as every command prints and reads a position. */
export function formatPosition(p: Position): string {
  return `${p.partition}:${p.offset}`;
}

export const EVENT_COLUMNS: readonly Column[] = [
  { header: 'VERSION', align: 'right' },
  { header: 'POSITION' },
  { header: 'TIME' },
  { header: 'TYPE' },
  { header: 'SCHEMA', align: 'right' },
  { header: 'DATA' },
];

/** A table row of an event; the data cut to what is left of a terminal's width. */
export function eventRow(out: Output, e: ShownEvent, withStream: boolean): string[] {
  const data = e.decoding === 'failed' ? `${out.style('red', `(undecodable: ${e.error})`)} ${toJson(e.data)}` : toJson(e.data);
  const type = e.decoding === 'decoded' ? e.type : `${e.type}${e.decoding === 'raw' ? '' : '!'}`;
  const cells = [...(withStream ? [e.streamId] : []), String(e.version), formatPosition(e.position), e.time, type, `v${e.schemaVersion}`];
  const used = cells.reduce((n, c) => n + c.length + 2, 0);
  return [...cells, out.width === undefined ? data : fit(data, Math.max(20, out.width - used))];
}

/** An event as one JSON line: positions as `{ partition, offset }` with the offset a string. */
export function eventJson(e: ShownEvent): unknown {
  return { ...e, position: { partition: e.position.partition, offset: e.position.offset.toString() } };
}

/** Plural: `1 event`, `2 events`. */
export function count(n: number | bigint, word: string): string {
  return `${n} ${word}${n === 1 || n === 1n ? '' : 's'}`;
}
