-- Read a channel's stream position and, optionally, its entries, in one step.
--
-- KEYS[1]  the stream
-- KEYS[2]  the stream's meta hash: "s" the last offset, "e" the epoch
-- ARGV[1]  an epoch to use if the stream has none (a new stream)
-- ARGV[2]  meta TTL in seconds, applied when the stream is created
-- ARGV[3]  "1" to read entries, "0" for the position only
-- ARGV[4]  the first entry id to read (forward) or the last (reverse), e.g. "5-0" or "-"/"+"
-- ARGV[5]  "1" to read newest first
-- ARGV[6]  the most entries to read; "0" for all
--
-- Returns {offset, epoch, entries}; entries as XRANGE gives them.
local epoch = redis.call("hget", KEYS[2], "e")
if not epoch then
  epoch = ARGV[1]
  redis.call("hset", KEYS[2], "e", epoch)
  redis.call("expire", KEYS[2], ARGV[2])
end
local offset = redis.call("hget", KEYS[2], "s") or 0
local entries = {}
if ARGV[3] == "1" then
  local count = tonumber(ARGV[6])
  if ARGV[5] == "1" then
    if count > 0 then
      entries = redis.call("xrevrange", KEYS[1], ARGV[4], "-", "COUNT", count)
    else
      entries = redis.call("xrevrange", KEYS[1], ARGV[4], "-")
    end
  else
    if count > 0 then
      entries = redis.call("xrange", KEYS[1], ARGV[4], "+", "COUNT", count)
    else
      entries = redis.call("xrange", KEYS[1], ARGV[4], "+")
    end
  end
end
return {offset, epoch, entries}
