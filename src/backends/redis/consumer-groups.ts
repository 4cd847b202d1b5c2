import type { ConsumerGroupDriver, ConsumerGroupPartition, DeadLetter, Delivery, Position, StoredEvent } from '../../core/driver.ts';
import { arr, evalScript, fields, str, type RedisConnection, type Reply } from './connection.ts';
import { idToOffset, type RedisKeys } from './keys.ts';

type Blocking = RedisConnection & { close(): Promise<void> };

export interface GroupDriverContext {
  readonly keys: RedisKeys;
  readonly partitions: number;
  connection(): RedisConnection;
  /** Runs `fn` on a pooled connection of its own (blocking reads must not hold up appends). */
  withBlocking<T>(fn: (conn: Blocking) => Promise<T>): Promise<T>;
  toStored(f: Map<string, Buffer>, streamId: string, version: number, position: Position): StoredEvent;
}

/** Moves an entry to the dead letters and acknowledges it in one step. KEYS: source, dlq. */
const DEAD_LETTER_SCRIPT = `
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #entry == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
local f = entry[1][2]
table.insert(f, 'why') table.insert(f, ARGV[3])
table.insert(f, 'n') table.insert(f, ARGV[4])
table.insert(f, 'at') table.insert(f, ARGV[5])
if ARGV[6] ~= '' then table.insert(f, 'l') table.insert(f, ARGV[6]) end
redis.call('XADD', KEYS[2], '*', unpack(f))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/** Moves dead letters back to the group (all when ARGV is empty). KEYS: dlq, redrive. */
const REDRIVE_SCRIPT = `
local ids = ARGV
if #ids == 0 then
  ids = {}
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do table.insert(ids, e[1]) end
end
local moved = 0
for _, id in ipairs(ids) do
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  if #entry > 0 then
    local f, keep = entry[1][2], {}
    for i = 1, #f, 2 do
      if f[i] ~= 'why' and f[i] ~= 'n' and f[i] ~= 'at' then table.insert(keep, f[i]) table.insert(keep, f[i + 1]) end
    end
    redis.call('XADD', KEYS[2], '*', unpack(keep))
    redis.call('XDEL', KEYS[1], id)
    moved = moved + 1
  end
end
return moved
`;

/**
 * Native consumer groups on the partition logs: XREADGROUP hands entries out, XACK settles
 * them, XAUTOCLAIM takes over entries of dead consumers, and dead letters are a stream per
 * group and partition written by a script that acks in the same step. Redriven dead letters
 * go to a per-group stream that the group reads like the log.
 */
export class RedisConsumerGroups implements ConsumerGroupDriver {
  readonly #ctx: GroupDriverContext;
  #nextPartition = 0;
  constructor(ctx: GroupDriverContext) {
    this.#ctx = ctx;
  }

  async ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void> {
    const c = this.#ctx.connection();
    for (let p = 0; p < this.#ctx.partitions; p++) {
      for (const [key, id] of [
        [this.#ctx.keys.all(p), start === 'end' ? '$' : '0'],
        [this.#ctx.keys.redrive(p, group), '0'],
      ] as const) {
        try {
          await c.send(key, ['XGROUP', 'CREATE', key, group, id, 'MKSTREAM']);
        } catch (error) {
          if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
        }
      }
    }
  }

  /** XINFO GROUPS of each partition log: the group's last delivered id and its pending entries count. */
  async describeGroup(group: string): Promise<ConsumerGroupPartition[] | undefined> {
    const c = this.#ctx.connection();
    const out: ConsumerGroupPartition[] = [];
    for (let partition = 0; partition < this.#ctx.partitions; partition++) {
      const key = this.#ctx.keys.all(partition);
      let groups: Reply[];
      try {
        groups = arr(await c.send(key, ['XINFO', 'GROUPS', key], true));
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('ERR no such key')) return undefined;
        throw error;
      }
      const info = groups.map((g) => fields(g)).find((f) => str(f.get('name')) === group);
      if (!info) return undefined;
      const last = str(info.get('last-delivered-id'));
      out.push({ partition, position: last === '0-0' ? undefined : idToOffset(last), pending: Number(str(info.get('pending'))) });
    }
    return out;
  }

  async readPending(group: string, consumer: string, options: { limit: number }): Promise<Delivery[]> {
    return this.#reclaimOwn(group, consumer, options.limit);
  }

  async read(group: string, consumer: string, options: { limit: number; blockMs: number }): Promise<Delivery[]> {
    const c = this.#ctx.connection();
    const sources = this.#sources(group);
    if (!c.cluster) {
      const keys = sources.map((s) => s.key);
      const args = ['XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(options.limit)];
      if (options.blockMs > 0) args.push('BLOCK', String(options.blockMs));
      args.push('STREAMS', ...keys, ...keys.map(() => '>'));
      const reply = options.blockMs > 0 ? await this.#ctx.withBlocking((b) => b.send(keys[0]!, args)) : await c.send(keys[0]!, args);
      return this.#fromReadReply(reply, sources, () => 1);
    }
    // A cluster cannot read keys of several slots in one command: one partition at a time,
    // starting one further each call so a busy partition cannot starve the others.
    const out: Delivery[] = [];
    const n = this.#ctx.partitions;
    const start = this.#nextPartition;
    this.#nextPartition = (start + 1) % n;
    for (let i = 0; i < n && out.length < options.limit; i++) {
      const p = (start + i) % n;
      const keys = [this.#ctx.keys.all(p), this.#ctx.keys.redrive(p, group)];
      const reply = await c.send(keys[0]!, [
        'XREADGROUP',
        'GROUP',
        group,
        consumer,
        'COUNT',
        String(options.limit - out.length),
        'STREAMS',
        ...keys,
        '>',
        '>',
      ]);
      out.push(...this.#fromReadReply(reply, sources, () => 1));
    }
    if (out.length === 0 && options.blockMs > 0) await new Promise((r) => setTimeout(r, Math.min(options.blockMs, 200)));
    return out;
  }

  async claimIdle(group: string, consumer: string, options: { minIdleMs: number; limit: number }): Promise<Delivery[]> {
    const c = this.#ctx.connection();
    const out: Delivery[] = [];
    for (const source of this.#sources(group)) {
      if (out.length >= options.limit) break;
      const reply = arr(
        await c.send(source.key, [
          'XAUTOCLAIM',
          source.key,
          group,
          consumer,
          String(Math.floor(options.minIdleMs)),
          '0-0',
          'COUNT',
          String(options.limit - out.length),
        ]),
      );
      const entries = arr(reply[1]).filter((e) => e !== null);
      if (entries.length === 0) continue;
      const counts = await this.#deliveryCounts(
        source.key,
        group,
        consumer,
        entries.map((e) => str(arr(e)[0])),
      );
      out.push(...entries.map((e) => this.#delivery(source, e, counts.get(str(arr(e)[0])) ?? 1)));
    }
    return out;
  }

  async ack(group: string, deliveries: readonly Delivery[]): Promise<void> {
    const byKey = new Map<string, string[]>();
    for (const d of deliveries) {
      const { key, id } = this.#parseReceipt(group, d.receipt);
      byKey.set(key, [...(byKey.get(key) ?? []), id]);
    }
    const c = this.#ctx.connection();
    for (const [key, ids] of byKey) await c.send(key, ['XACK', key, group, ...ids]);
  }

  async deadLetter(group: string, delivery: Delivery, reason: string): Promise<void> {
    const { key, id, partition, kind } = this.#parseReceipt(group, delivery.receipt);
    const dlq = this.#ctx.keys.deadLetters(partition, group);
    // Entries of the log get their own id recorded as 'l'; redriven entries already carry it.
    const logId = kind === 'all' ? id : '';
    await evalScript(
      this.#ctx.connection(),
      DEAD_LETTER_SCRIPT,
      [key, dlq],
      [group, id, reason, String(delivery.deliveries), String(Date.now()), logId],
    );
  }

  async listDeadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    const c = this.#ctx.connection();
    const out: DeadLetter[] = [];
    for (let p = 0; p < this.#ctx.partitions; p++) {
      const key = this.#ctx.keys.deadLetters(p, group);
      for (const entry of arr(await c.send(key, ['XRANGE', key, '-', '+', 'COUNT', String(limit)], true))) {
        const [id, body] = arr(entry);
        const f = fields(body);
        out.push({
          id: `${p}/${str(id)}`,
          event: this.#ctx.toStored(f, str(f.get('s')), Number(str(f.get('v'))), { partition: p, offset: idToOffset(str(f.get('l'))) }),
          reason: str(f.get('why')),
          deliveries: Number(str(f.get('n'))),
          deadAt: Number(str(f.get('at'))),
        });
      }
    }
    return out.sort((a, b) => a.deadAt - b.deadAt).slice(0, limit);
  }

  async redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    const c = this.#ctx.connection();
    let moved = 0;
    for (let p = 0; p < this.#ctx.partitions; p++) {
      const mine = ids?.filter((id) => id.startsWith(`${p}/`)).map((id) => id.slice(id.indexOf('/') + 1));
      if (mine && mine.length === 0) continue;
      const dlq = this.#ctx.keys.deadLetters(p, group);
      moved += Number(await evalScript(c, REDRIVE_SCRIPT, [dlq, this.#ctx.keys.redrive(p, group)], mine ?? []));
    }
    return moved;
  }

  async resetGroup(group: string, to: 'beginning' | 'end'): Promise<void> {
    const c = this.#ctx.connection();
    for (let p = 0; p < this.#ctx.partitions; p++) {
      const key = this.#ctx.keys.all(p);
      await c.send(key, ['XGROUP', 'SETID', key, group, to === 'end' ? '$' : '0']);
    }
  }

  /** Entries delivered to this consumer name before (it restarted): claimed again so their delivery count goes up. */
  async #reclaimOwn(group: string, consumer: string, limit: number): Promise<Delivery[]> {
    const c = this.#ctx.connection();
    const out: Delivery[] = [];
    for (const source of this.#sources(group)) {
      if (out.length >= limit) break;
      const pending = arr(await c.send(source.key, ['XPENDING', source.key, group, '-', '+', String(limit - out.length), consumer], true));
      if (pending.length === 0) continue;
      const counts = new Map(pending.map((p) => [str(arr(p)[0]), Number(arr(p)[3]) + 1] as const));
      const entries = arr(await c.send(source.key, ['XCLAIM', source.key, group, consumer, '0', ...counts.keys()]));
      out.push(...entries.filter((e) => e !== null).map((e) => this.#delivery(source, e, counts.get(str(arr(e)[0])) ?? 1)));
    }
    return out;
  }

  async #deliveryCounts(key: string, group: string, consumer: string, ids: string[]): Promise<Map<string, number>> {
    const sorted = [...ids].sort((a, b) => (idToOffset(a) < idToOffset(b) ? -1 : 1));
    const reply = arr(
      await this.#ctx
        .connection()
        .send(key, ['XPENDING', key, group, sorted[0]!, sorted[sorted.length - 1]!, String(ids.length * 2 + 10), consumer], true),
    );
    return new Map(reply.map((p) => [str(arr(p)[0]), Number(arr(p)[3])] as const));
  }

  #sources(group: string): Source[] {
    const out: Source[] = [];
    for (let p = 0; p < this.#ctx.partitions; p++) {
      out.push(
        { partition: p, kind: 'all', key: this.#ctx.keys.all(p) },
        { partition: p, kind: 'rd', key: this.#ctx.keys.redrive(p, group) },
      );
    }
    return out;
  }

  #fromReadReply(reply: Reply, sources: Source[], deliveries: () => number): Delivery[] {
    const out: Delivery[] = [];
    for (const stream of arr(reply)) {
      const [key, entries] = arr(stream);
      const source = sources.find((s) => s.key === str(key));
      if (!source) continue;
      for (const e of arr(entries)) out.push(this.#delivery(source, e, deliveries()));
    }
    return out;
  }

  #delivery(source: Source, entry: Reply, deliveries: number): Delivery {
    const [id, body] = arr(entry);
    const f = fields(body);
    const entryId = str(id);
    const logId = source.kind === 'all' ? entryId : str(f.get('l'));
    return {
      event: this.#ctx.toStored(f, str(f.get('s')), Number(str(f.get('v'))), { partition: source.partition, offset: idToOffset(logId) }),
      deliveries,
      receipt: `${source.partition}|${source.kind}|${entryId}`,
    };
  }

  #parseReceipt(group: string, receipt: string): { key: string; id: string; partition: number; kind: 'all' | 'rd' } {
    const [p, kind, id] = receipt.split('|') as [string, 'all' | 'rd', string];
    const partition = Number(p);
    return { key: kind === 'all' ? this.#ctx.keys.all(partition) : this.#ctx.keys.redrive(partition, group), id, partition, kind };
  }
}

interface Source {
  readonly partition: number;
  readonly kind: 'all' | 'rd';
  readonly key: string;
}
