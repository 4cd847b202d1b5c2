// What the JSON codec's "reads back equal" check costs on the append path.
//
//   node bench/encode-cost.ts            # or: npm run bench:encode
//   node bench/encode-cost.ts --rounds 9 --n 20000
//
// Times, in interleaved rounds (A B A B…), the JSON codec's encode (the check, then
// JSON.stringify and UTF-8) against the same encode without the check, for a small and a large
// payload, and one whole append to the in-memory SQLite store for scale. Prints ns per event and
// the ratio per round; claims only ratios from one run.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createEventStore, defineEvent, jsonCodec } from '../src/index.ts';
import { sqlite } from '../src/backends/sqlite/index.ts';
import { median, now } from './stats.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, n: { type: 'string', default: '20000' } } });
const rounds = Number(values.rounds);
const n = Number(values.n);

const line = (i: number) => ({ sku: `SKU-${1000 + i}`, quantity: i + 1, unitPrice: 9.99 + i, tags: ['a', 'b'] });
const payloads = {
  small: { orderId: 'order-42', customerId: 'c-7', lines: [0, 1, 2].map(line), note: null, paid: false },
  large: {
    orderId: 'order-42',
    customerId: 'c-7',
    lines: Array.from({ length: 200 }, (_, i) => line(i)),
    address: { city: 'Köln', zip: '50667' },
  },
};

const codec = jsonCodec();
const utf8 = new TextEncoder();
let sink = 0;
const checked = (data: unknown) => (sink += codec.encode({ type: 'Order', schemaVersion: 1, data }).byteLength);
const unchecked = (data: unknown) => (sink += utf8.encode(JSON.stringify(data)).byteLength);

function time(fn: (data: unknown) => number, data: unknown, count: number): number {
  const start = now();
  for (let i = 0; i < count; i++) fn(data);
  return ((now() - start) * 1e6) / count;
}

console.log(`| payload | encode with check (ns) | without (ns) | ratio (median of ${rounds} rounds) | range |`);
console.log('|---|---|---|---|---|');
for (const [name, data] of Object.entries(payloads)) {
  const count = name === 'large' ? Math.max(1, Math.floor(n / 50)) : n;
  time(checked, data, count); // warm-up
  time(unchecked, data, count);
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(time(checked, data, count));
    b.push(time(unchecked, data, count));
    ratios.push(a[r]! / b[r]!);
  }
  const bytes = JSON.stringify(data).length;
  console.log(
    `| ${name} (${bytes} B) | ${median(a).toFixed(0)} | ${median(b).toFixed(0)} | ${median(ratios).toFixed(2)} | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} |`,
  );
}

// For scale: one batch-1 append of the small payload, everything included.
const Order = defineEvent({ type: 'Order', schema: z.unknown() });
const store = createEventStore({ driver: sqlite(), events: [Order] });
const appends = Math.min(n, 5000);
const start = now();
for (let i = 0; i < appends; i++) await store.append(`order-${i % 100}`, Order(payloads.small));
const perAppend = ((now() - start) * 1e6) / appends;
await store.close();
console.log(`\none batch-1 append of the small payload to in-memory SQLite: ${perAppend.toFixed(0)} ns (${appends} appends)`);
if (sink < 0) console.log(sink);
