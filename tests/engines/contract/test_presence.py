"""The PresenceManager contract: add, refresh, remove, expire, count."""

from __future__ import annotations

from wavecast.engines import ClientInfo, PresenceStats

from ..helpers import Engine

TTL = 60.0
#: A presence TTL that tests let pass.
SHORT_TTL = 1.0


def info(client: str, user: str, conn_info: bytes | None = None, chan_info: bytes | None = None) -> ClientInfo:
    return ClientInfo(client=client, user=user, conn_info=conn_info, chan_info=chan_info)


async def test_empty_channel(engine: Engine) -> None:
    channel = engine.channel()
    assert await engine.presence.presence(channel) == {}
    assert await engine.presence.presence_stats(channel) == PresenceStats(num_clients=0, num_users=0)


async def test_add_and_get(engine: Engine) -> None:
    channel = engine.channel()
    ann = info("c1", "ann", b'{"name":"Ann"}', b'{"role":"admin"}')
    bob = info("c2", "bob")
    await engine.presence.add_presence(channel, "c1", ann, ttl=TTL)
    await engine.presence.add_presence(channel, "c2", bob, ttl=TTL)
    assert await engine.presence.presence(channel) == {"c1": ann, "c2": bob}


async def test_channels_are_separate(engine: Engine) -> None:
    one, two = engine.channel(), engine.channel()
    await engine.presence.add_presence(one, "c1", info("c1", "ann"), ttl=TTL)
    assert await engine.presence.presence(two) == {}
    assert (await engine.presence.presence_stats(two)).num_clients == 0


async def test_stats_count_distinct_users(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=TTL)
    await engine.presence.add_presence(channel, "c2", info("c2", "ann"), ttl=TTL)
    await engine.presence.add_presence(channel, "c3", info("c3", "bob"), ttl=TTL)
    assert await engine.presence.presence_stats(channel) == PresenceStats(num_clients=3, num_users=2)


async def test_anonymous_clients_count_as_one_user(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.add_presence(channel, "c1", info("c1", ""), ttl=TTL)
    await engine.presence.add_presence(channel, "c2", info("c2", ""), ttl=TTL)
    assert await engine.presence.presence_stats(channel) == PresenceStats(num_clients=2, num_users=1)


async def test_add_again_replaces_the_info(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.add_presence(channel, "c1", info("c1", "ann", b"1"), ttl=TTL)
    await engine.presence.add_presence(channel, "c1", info("c1", "ann", b"2"), ttl=TTL)
    assert await engine.presence.presence(channel) == {"c1": info("c1", "ann", b"2")}
    assert await engine.presence.presence_stats(channel) == PresenceStats(num_clients=1, num_users=1)


async def test_remove(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=TTL)
    await engine.presence.add_presence(channel, "c2", info("c2", "ann"), ttl=TTL)
    await engine.presence.remove_presence(channel, "c1", "ann")
    assert await engine.presence.presence(channel) == {"c2": info("c2", "ann")}
    assert await engine.presence.presence_stats(channel) == PresenceStats(num_clients=1, num_users=1)
    await engine.presence.remove_presence(channel, "c2", "ann")
    assert await engine.presence.presence(channel) == {}
    assert await engine.presence.presence_stats(channel) == PresenceStats(num_clients=0, num_users=0)


async def test_remove_what_is_not_there(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.remove_presence(channel, "c1", "ann")
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=TTL)
    await engine.presence.remove_presence(channel, "c2", "bob")
    assert list(await engine.presence.presence(channel)) == ["c1"]


async def test_entries_expire_after_their_ttl(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=SHORT_TTL)
    await engine.presence.add_presence(channel, "c2", info("c2", "bob"), ttl=TTL)
    await engine.advance(SHORT_TTL * 1.5)
    assert list(await engine.presence.presence(channel)) == ["c2"]
    assert await engine.presence.presence_stats(channel) == PresenceStats(num_clients=1, num_users=1)


async def test_adding_again_refreshes_the_ttl(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=SHORT_TTL)
    await engine.advance(SHORT_TTL * 0.6)
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=SHORT_TTL)
    await engine.advance(SHORT_TTL * 0.6)
    # More than the TTL since the first add, less since the refresh.
    assert list(await engine.presence.presence(channel)) == ["c1"]
    await engine.advance(SHORT_TTL * 0.6)
    assert await engine.presence.presence(channel) == {}


async def test_an_expired_client_may_come_back(engine: Engine) -> None:
    channel = engine.channel()
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=SHORT_TTL)
    await engine.advance(SHORT_TTL * 1.5)
    await engine.presence.add_presence(channel, "c1", info("c1", "ann"), ttl=SHORT_TTL)
    assert list(await engine.presence.presence(channel)) == ["c1"]


async def test_close_twice(engine: Engine) -> None:
    await engine.presence.close()
    await engine.presence.close()
