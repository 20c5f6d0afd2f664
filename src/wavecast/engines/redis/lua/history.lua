-- Read a channel's stream position and, optionally, its entries, in one step.
--
-- KEYS[1]  the stream
-- KEYS[2]  the stream's meta hash: "s" the last offset, "e" the epoch
-- KEYS[3]  the seed of the epochs of channels without a stream (one per Redis)
-- ARGV[1]  a seed to store if Redis has none (a new or emptied Redis)
-- ARGV[2]  the epoch period: the current time divided by the meta TTL, rounded down
-- ARGV[3]  "1" to read entries, "0" for the position only
-- ARGV[4]  the first entry id to read (forward) or the last (reverse), e.g. "5-0" or "-"/"+"
-- ARGV[5]  "1" to read newest first
-- ARGV[6]  the most entries to read; "0" for all
-- ARGV[7]  the channel
-- ARGV[8]  seconds a new seed is kept; "0" or absent: for ever
--
-- Returns {offset, epoch, entries}; entries as XRANGE gives them. A channel that was never
-- published to has no stream, and reading it creates none: its position is offset 0 in the
-- epoch that its first publication will take (see publish.lua), the same on every read.
local meta = redis.call("hmget", KEYS[2], "e", "s")
local epoch, offset = meta[1], meta[2]
if not offset then
  if epoch then
    -- A position without publications, as reads used to leave: forget it now.
    redis.call("del", KEYS[2])
  end
  local seed = redis.call("get", KEYS[3])
  if not seed then
    seed = ARGV[1]
    if tonumber(ARGV[8] or "0") > 0 then
      redis.call("set", KEYS[3], seed, "EX", ARGV[8])
    else
      redis.call("set", KEYS[3], seed)
    end
  end
  return {0, string.sub(redis.sha1hex(seed .. ":" .. ARGV[2] .. ":" .. ARGV[7]), 1, 8), {}}
end
local entries = {}
if ARGV[3] == "1" then
  -- Forward from ARGV[4] to the end, or backward from it to the start.
  local command, last = "xrange", "+"
  if ARGV[5] == "1" then
    command, last = "xrevrange", "-"
  end
  if tonumber(ARGV[6]) > 0 then
    entries = redis.call(command, KEYS[1], ARGV[4], last, "COUNT", ARGV[6])
  else
    entries = redis.call(command, KEYS[1], ARGV[4], last)
  end
end
return {offset, epoch, entries}
