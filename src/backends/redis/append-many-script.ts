import type { AppendRequest, EncodedEvent } from '../../core/driver.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { keySlot, type RedisKeys } from './keys.ts';
import { trimIdsLua } from './id-window.ts';

/**
 * The atomic append to several streams, as one Lua script over the keys of every stream and
 * partition involved. It checks everything before it writes anything, so a batch is stored
 * whole or not at all: each stream's expected version and the duplicate-id check of each
 * partition, in request order (the first failure is reported, as `append` would report it);
 * then the XADDs to each stream and to its partition's log, exactly as `appendScript` writes them,
 * then the id index of each partition is trimmed to the window (id-window.ts).
 *
 * A batch that fails may be the exact retry of one that was stored (its reply was lost): when
 * every event of every request is already stored, in its stream, at the versions the batch
 * would have given it, the script answers `stored` with each stream's first version instead.
 *
 * KEYS: per partition involved its log and id index (log 1, ids 1, log 2, ids 2, …), then the
 * stream of each request. ARGV: partition count, request count, then per request its partition
 * (1-based, into KEYS), expected kind ('any'|'no_stream'|'stream_exists'|'exact'), expected
 * number, streamId, event count, and 7 values per event: id, type, schemaVersion, codec, data,
 * metadata, time. Reply: {'ok', then per request its new version and one log id per event} |
 * {'conflict', request, current} | {'duplicate', request, id, existing} | {'stored', first
 * version per request}.
 */
export function appendManyScript(idWindow: number): string {
  return `${trimIdsLua(idWindow)}
local P, R = tonumber(ARGV[1]), tonumber(ARGV[2])
local reqs, cursor = {}, 3
for r = 1, R do
  local q = { p = tonumber(ARGV[cursor]), kind = ARGV[cursor + 1], expected = tonumber(ARGV[cursor + 2]),
    streamId = ARGV[cursor + 3], count = tonumber(ARGV[cursor + 4]), base = cursor + 5, stream = KEYS[2 * P + r] }
  q.log, q.ids = KEYS[2 * q.p - 1], KEYS[2 * q.p]
  cursor = q.base + q.count * 7
  reqs[r] = q
end

local function versionString(n) return string.format('%.0f', n) end

local function isRetry()
  for _, q in ipairs(reqs) do
    local first = redis.call('HGET', q.ids, ARGV[q.base])
    if not first then return false end
    local v, s = string.match(first, '^(%d+) (.+)$')
    local from = tonumber(v)
    if s ~= q.streamId then return false end
    if (q.kind == 'exact' and from ~= q.expected + 1) or (q.kind == 'no_stream' and from ~= 1)
      or (q.kind == 'stream_exists' and from < 2) then return false end
    for i = 1, q.count - 1 do
      if redis.call('HGET', q.ids, ARGV[q.base + i * 7]) ~= versionString(from + i) .. ' ' .. q.streamId then return false end
    end
    q.from = from
  end
  return true
end

local failure
for r, q in ipairs(reqs) do
  q.current = 0
  local last = redis.call('XREVRANGE', q.stream, '+', '-', 'COUNT', 1)
  if #last > 0 then q.current = tonumber(string.match(last[1][1], '^0%-(%d+)$')) end
  local ok = (q.kind == 'any') or (q.kind == 'no_stream' and q.current == 0)
    or (q.kind == 'stream_exists' and q.current > 0) or (q.kind == 'exact' and q.current == q.expected)
  if not ok then
    failure = {'conflict', tostring(r), tostring(q.current)}
    break
  end
  for i = 0, q.count - 1 do
    local id = ARGV[q.base + i * 7]
    local existing = redis.call('HGET', q.ids, id)
    if existing then
      failure = {'duplicate', tostring(r), id, existing}
      break
    end
  end
  if failure then break end
end
if failure then
  if isRetry() then
    local out = {'stored'}
    for _, q in ipairs(reqs) do table.insert(out, versionString(q.from)) end
    return out
  end
  return failure
end

local tails = {}
local result = {'ok'}
for _, q in ipairs(reqs) do
  local tail = tails[q.p]
  if not tail then
    tail = { ms = 0, seq = -1 }
    local top = redis.call('XREVRANGE', q.log, '+', '-', 'COUNT', 1)
    if #top > 0 then
      local ms, seq = string.match(top[1][1], '^(%d+)%-(%d+)$')
      tail.ms, tail.seq = tonumber(ms), tonumber(seq)
    end
    tails[q.p] = tail
  end
  table.insert(result, versionString(q.current + q.count))
  for i = 0, q.count - 1 do
    local base = q.base + i * 7
    local time = tonumber(ARGV[base + 6])
    local ms, seq = time, 0
    if ms <= tail.ms then
      ms, seq = tail.ms, tail.seq + 1
      if seq >= 1048576 then ms, seq = tail.ms + 1, 0 end
    end
    tail.ms, tail.seq = ms, seq
    local logId = string.format('%.0f-%.0f', ms, seq)
    local v = versionString(q.current + i + 1)
    redis.call('XADD', q.stream, '0-' .. v, 'i', ARGV[base], 't', ARGV[base + 1], 'sv', ARGV[base + 2],
      'c', ARGV[base + 3], 'd', ARGV[base + 4], 'm', ARGV[base + 5], 'tm', ARGV[base + 6], 'l', logId)
    redis.call('XADD', q.log, logId, 's', q.streamId, 'v', v, 'i', ARGV[base], 't', ARGV[base + 1],
      'sv', ARGV[base + 2], 'c', ARGV[base + 3], 'd', ARGV[base + 4], 'm', ARGV[base + 5], 'tm', ARGV[base + 6])
    redis.call('HSET', q.ids, ARGV[base], v .. ' ' .. q.streamId)
    table.insert(result, logId)
  end
end
for _, q in ipairs(reqs) do trimIds(q.log, q.ids) end
return result
`;
}

type Argument = string | Buffer;

/** The 7 script arguments of each event, shared with appendScript's layout. */
export function eventArgs(events: readonly EncodedEvent[]): Argument[] {
  const out: Argument[] = [];
  for (const e of events) {
    out.push(
      e.id,
      e.type,
      String(e.schemaVersion),
      e.codec,
      Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength),
      e.metadata,
      String(e.time),
    );
  }
  return out;
}

/** Expected kind and number as the scripts take them. */
export function expectedArgs(request: AppendRequest): [string, string] {
  const expected = request.expectedVersion;
  return typeof expected === 'number' ? ['exact', String(expected)] : [expected, '0'];
}

/**
 * Keys and arguments of appendManyScript for `requests`, checked before anything is sent: an
 * event id may appear once in the batch, and on a cluster every key must hash to one slot,
 * which holds for streams of one partition (their keys share its hash tag `{p<n>}`).
 */
export function appendManyCall(
  keys: RedisKeys,
  requests: readonly AppendRequest[],
  cluster: boolean,
): { keys: string[]; args: Argument[] } {
  const seen = new Set<string>();
  for (const r of requests) {
    for (const e of r.events) {
      if (seen.has(e.id)) throw new InvalidArgumentError(`event id ${e.id} appears twice in one appendMany`);
      seen.add(e.id);
    }
  }
  const partitions = [...new Set(requests.map((r) => r.partition))];
  if (cluster) {
    const slots = new Set(partitions.map((p) => keySlot(keys.all(p))));
    if (slots.size > 1) {
      const where = requests.map((r) => `"${r.streamId}" (partition ${r.partition}, slot ${keySlot(keys.all(r.partition))})`).join(', ');
      throw new InvalidArgumentError(
        `[redis] on a Redis Cluster appendMany is atomic only over streams whose keys share one hash slot, ` +
          `that is streams of one partition; these streams span ${slots.size} slots: ${where}. Nothing was stored.`,
      );
    }
  }
  const index = new Map(partitions.map((p, i) => [p, i + 1]));
  const scriptKeys = [
    ...partitions.flatMap((p) => [keys.all(p), keys.ids(p)]),
    ...requests.map((r) => keys.stream(r.partition, r.streamId)),
  ];
  const args: Argument[] = [String(partitions.length), String(requests.length)];
  for (const r of requests) {
    args.push(String(index.get(r.partition)), ...expectedArgs(r), r.streamId, String(r.events.length), ...eventArgs(r.events));
  }
  return { keys: scriptKeys, args };
}
