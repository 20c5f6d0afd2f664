-- Append a publication to a channel's stream and fan it out to every node, in one step.
--
-- KEYS[1]  the stream (a Redis stream whose entry ids are offsets)
-- KEYS[2]  the stream's meta hash: "s" the last offset, "e" the epoch
-- KEYS[3]  the seed of the epochs of channels without a stream (one per Redis)
-- KEYS[4]  the result of the publication's idempotency key: "e" epoch, "s" offset
-- ARGV[1]  the pub/sub channel of the channel; "" publishes nothing (another broker fans out)
-- ARGV[2]  the encoded publication
-- ARGV[3]  history size: entries kept
-- ARGV[4]  history TTL in seconds, after the last publication
-- ARGV[5]  meta TTL in seconds: how long offset and epoch outlive the last publication
-- ARGV[6]  a seed to store if Redis has none (a new or emptied Redis)
-- ARGV[7]  the epoch period: the current time divided by the meta TTL, rounded down
-- ARGV[8]  the channel
-- ARGV[9]  seconds the result is kept under KEYS[4]; "0" or absent without an idempotency key
-- ARGV[10] the fan-out command: "publish", or "spublish" on a Redis Cluster (absent: "publish")
-- ARGV[11] seconds a new seed is kept; "0" or absent: for ever
--
-- Returns {offset, epoch, 1}. The pub/sub message is "p<offset>:<epoch>:<publication>". When
-- KEYS[4] holds a result, the publication is a repeat: nothing is appended or published,
-- and the first one's {offset, epoch} is returned (without the 1: a repeat).
--
-- A new stream takes the epoch that history.lua reported while the channel had none, so a
-- subscriber that came before the first publication recovers it. That epoch changes with
-- the seed, which an emptied Redis loses, and every meta TTL, which is less than the time
-- between the starts of two streams of one channel: a stream that starts again never has
-- the epoch of the one before, and a client can't mistake one for the other.
local result_ttl = tonumber(ARGV[9] or "0")
if result_ttl > 0 then
  local first = redis.call("hmget", KEYS[4], "s", "e")
  if first[1] then
    return first
  end
end
local meta = redis.call("hmget", KEYS[2], "e", "s")
local epoch = meta[1]
if not meta[2] then
  local seed = redis.call("get", KEYS[3])
  if not seed then
    seed = ARGV[6]
    if tonumber(ARGV[11] or "0") > 0 then
      redis.call("set", KEYS[3], seed, "EX", ARGV[11])
    else
      redis.call("set", KEYS[3], seed)
    end
  end
  epoch = string.sub(redis.sha1hex(seed .. ":" .. ARGV[7] .. ":" .. ARGV[8]), 1, 8)
  redis.call("hset", KEYS[2], "e", epoch)
end
local offset = redis.call("hincrby", KEYS[2], "s", 1)
redis.call("expire", KEYS[2], ARGV[5])
redis.call("xadd", KEYS[1], "MAXLEN", ARGV[3], offset .. "-0", "d", ARGV[2])
redis.call("expire", KEYS[1], ARGV[4])
if ARGV[1] ~= "" then
  redis.call(ARGV[10] or "publish", ARGV[1], "p" .. offset .. ":" .. epoch .. ":" .. ARGV[2])
end
if result_ttl > 0 then
  redis.call("hset", KEYS[4], "s", offset, "e", epoch)
  redis.call("expire", KEYS[4], result_ttl)
end
return {offset, epoch, 1}
