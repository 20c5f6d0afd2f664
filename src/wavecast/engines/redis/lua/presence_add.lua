-- Add or refresh a client's presence in a channel.
--
-- KEYS[1]  the channel's presence hash: client id -> encoded info
-- KEYS[2]  the channel's expiry sorted set: client id -> expiry time (Unix seconds)
-- ARGV[1]  the client id
-- ARGV[2]  the encoded info
-- ARGV[3]  the entry's TTL in seconds
-- ARGV[4]  now, in Unix seconds
--
-- Both keys live as long as their newest entry. Returns nothing.
redis.call("hset", KEYS[1], ARGV[1], ARGV[2])
redis.call("zadd", KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[1])
redis.call("expire", KEYS[1], ARGV[3])
redis.call("expire", KEYS[2], ARGV[3])
