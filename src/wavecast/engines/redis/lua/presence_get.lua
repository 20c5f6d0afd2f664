-- Return a channel's present clients, dropping expired entries first.
--
-- KEYS[1]  the channel's presence hash: client id -> encoded info
-- KEYS[2]  the channel's expiry sorted set: client id -> expiry time (Unix seconds)
-- ARGV[1]  now, in Unix seconds
--
-- Returns the hash as a flat list: client id, info, client id, info, ...
local expired = redis.call("zrangebyscore", KEYS[2], "-inf", ARGV[1])
if #expired > 0 then
  redis.call("hdel", KEYS[1], unpack(expired))
  redis.call("zremrangebyscore", KEYS[2], "-inf", ARGV[1])
end
return redis.call("hgetall", KEYS[1])
