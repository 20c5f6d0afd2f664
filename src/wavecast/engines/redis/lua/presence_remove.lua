-- Remove a client's presence from a channel.
--
-- KEYS[1]  the channel's presence hash
-- KEYS[2]  the channel's expiry sorted set
-- ARGV[1]  the client id
--
-- Returns nothing.
redis.call("hdel", KEYS[1], ARGV[1])
redis.call("zrem", KEYS[2], ARGV[1])
