import { trimIdsLua } from './id-window.ts';

/**
 * The append, as one Lua script: the expected-version check, the duplicate-id check and both
 * XADDs run atomically on the server. KEYS: stream, partition log, id index (one slot).
 * ARGV: expected kind ('any'|'no_stream'|'stream_exists'|'exact'), expected number, streamId,
 * event count, then 7 values per event: id, type, schemaVersion, codec, data, metadata, time.
 *
 * The stream's version is the sequence part of its last entry id (`0-<version>`), not XLEN.
 * Partition-log ids are explicit `<ms>-<seq>`: ms = max(event time, last ms), so the log is a
 * time index that never goes backwards even when writers' clocks disagree.
 */
export function appendScript(idWindow: number): string {
  return `${trimIdsLua(idWindow)}
local stream, log, ids = KEYS[1], KEYS[2], KEYS[3]
local kind, expected, streamId, count = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])

local current = 0
local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if #last > 0 then
  current = tonumber(string.match(last[1][1], '^0%-(%d+)$'))
end
local ok = (kind == 'any') or (kind == 'no_stream' and current == 0)
  or (kind == 'stream_exists' and current > 0) or (kind == 'exact' and current == expected)
if not ok then
  return {'conflict', tostring(current)}
end

for i = 0, count - 1 do
  local id = ARGV[5 + i * 7]
  local existing = redis.call('HGET', ids, id)
  if existing then
    return {'duplicate', id, existing}
  end
end

local lastMs, lastSeq = 0, -1
local tail = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
if #tail > 0 then
  local ms, seq = string.match(tail[1][1], '^(%d+)%-(%d+)$')
  lastMs, lastSeq = tonumber(ms), tonumber(seq)
end

local result = {'ok', tostring(current + count)}
for i = 0, count - 1 do
  local base = 5 + i * 7
  local version = current + i + 1
  local time = tonumber(ARGV[base + 6])
  local ms, seq = time, 0
  if ms <= lastMs then
    ms, seq = lastMs, lastSeq + 1
    if seq >= 1048576 then ms, seq = lastMs + 1, 0 end
  end
  lastMs, lastSeq = ms, seq
  local logId = string.format('%.0f-%.0f', ms, seq)
  local v = string.format('%.0f', version)
  redis.call('XADD', stream, '0-' .. v, 'i', ARGV[base], 't', ARGV[base + 1], 'sv', ARGV[base + 2],
    'c', ARGV[base + 3], 'd', ARGV[base + 4], 'm', ARGV[base + 5], 'tm', ARGV[base + 6], 'l', logId)
  redis.call('XADD', log, logId, 's', streamId, 'v', v, 'i', ARGV[base], 't', ARGV[base + 1],
    'sv', ARGV[base + 2], 'c', ARGV[base + 3], 'd', ARGV[base + 4], 'm', ARGV[base + 5], 'tm', ARGV[base + 6])
  redis.call('HSET', ids, ARGV[base], v .. ' ' .. streamId)
  table.insert(result, logId)
end
trimIds(log, ids)
return result
`;
}
