-- Append a publication to a channel's stream and fan it out to every node, in one step.
--
-- KEYS[1]  the stream (a Redis stream whose entry ids are offsets)
-- KEYS[2]  the stream's meta hash: "s" the last offset, "e" the epoch
-- ARGV[1]  the pub/sub channel of the channel
-- ARGV[2]  the encoded publication
-- ARGV[3]  history size: entries kept
-- ARGV[4]  history TTL in seconds, after the last publication
-- ARGV[5]  meta TTL in seconds: how long offset and epoch outlive the last publication
-- ARGV[6]  an epoch to use if the stream has none (a new stream)
--
-- Returns {offset, epoch}. The pub/sub message is "p<offset>:<epoch>:<publication>".
local epoch = redis.call("hget", KEYS[2], "e")
if not epoch then
  epoch = ARGV[6]
  redis.call("hset", KEYS[2], "e", epoch)
end
local offset = redis.call("hincrby", KEYS[2], "s", 1)
redis.call("expire", KEYS[2], ARGV[5])
redis.call("xadd", KEYS[1], "MAXLEN", ARGV[3], offset .. "-0", "d", ARGV[2])
redis.call("expire", KEYS[1], ARGV[4])
redis.call("publish", ARGV[1], "p" .. offset .. ":" .. epoch .. ":" .. ARGV[2])
return {offset, epoch}
