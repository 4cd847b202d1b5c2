/** Event ids each partition's id index keeps (the duplicate check's window), as on the log backends. */
export const DEFAULT_ID_WINDOW = 100_000;

/**
 * A Lua function the append scripts call after their inserts: while a partition's id index
 * (`<prefix>:{p<n>}:ids`) holds more than `window` ids, it drops the oldest, in the order of the
 * partition log, whose entries carry each event's id. A cursor field (a name longer than any
 * event id can be, so no id collides with it) remembers how far the log was trimmed from; an
 * index from before the window existed is trimmed from the log's start.
 */
export function trimIdsLua(window: number): string {
  if (!Number.isSafeInteger(window) || window < 1) throw new RangeError('the id window must be a positive integer');
  return `
local function trimIds(log, ids)
  local cursorField = string.rep('~', 129)
  local cursor = redis.call('HGET', ids, cursorField)
  local over = redis.call('HLEN', ids) - (cursor and 1 or 0) - ${window}
  if over <= 0 then return end
  local entries = redis.call('XRANGE', log, '(' .. (cursor or '0-0'), '+', 'COUNT', over)
  for _, entry in ipairs(entries) do
    local f = entry[2]
    for k = 1, #f, 2 do
      if f[k] == 'i' then
        redis.call('HDEL', ids, f[k + 1])
        break
      end
    end
    cursor = entry[1]
  end
  if cursor then redis.call('HSET', ids, cursorField, cursor) end
end
`;
}
