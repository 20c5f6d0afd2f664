-- Publish a publication without history once per idempotency key.
--
-- KEYS[1]  the key's marker, kept while a repeat must not be published
-- ARGV[1]  the pub/sub channel of the channel
-- ARGV[2]  the pub/sub message
-- ARGV[3]  seconds the marker is kept
-- ARGV[4]  the fan-out command: "publish", or "spublish" on a Redis Cluster (absent: "publish")
--
-- Returns 1 when the message was published, 0 when the key was seen within ARGV[3] seconds.
if redis.call("set", KEYS[1], "1", "NX", "EX", ARGV[3]) then
  redis.call(ARGV[4] or "publish", ARGV[1], ARGV[2])
  return 1
end
return 0
