"""The multiplayer game: an arena where players move, run by an authoritative server loop.

Everything happens in one channel, ``game:arena``. A page subscribes to enter the arena (the
``on_subscribe`` hook places its player and answers its id) and publishes its input, the
direction it holds, whenever it changes; the ``on_publish`` hook validates the input, records
it and drops the publication, so that no client speaks for the state. The server's loop
(:func:`game_loop`, 30 times a second) moves the players and publishes a compact snapshot,
``{"t": tick, "p": [[id, user, x, y], ...]}``; the pages interpolate between snapshots. Presence
and join/leave say who is in the arena; a player whose connection goes, or who unsubscribes,
leaves it at the next tick.

Run it alone with ``python -m examples.game``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import Mapping

from wavecast.codes import ERROR_BAD_REQUEST, Error
from wavecast.exceptions import CommandError
from wavecast.realtime import ChannelOptions, Node, Session
from wavecast.realtime.contexts import (
    DisconnectContext,
    PublishContext,
    PublishResult,
    SubscribeContext,
    SubscribeResult,
)
from wavecast.server.app import HttpResponse

from ..kit import Demo, DemoContext, json_response

__all__ = ["ARENA", "DEMO", "Arena", "game_loop"]

ARENA = "game:arena"
WIDTH, HEIGHT = 960, 540
RADIUS = 16
#: Pixels a second.
SPEED = 240
TICK_RATE = 30
MAX_PLAYERS = 32

ERROR_ARENA_FULL = Error(400, "the arena is full")

GAME = ChannelOptions(
    presence=True,
    join_leave=True,
    force_push_join_leave=True,
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    allow_presence_for_subscriber=True,
)


@dataclasses.dataclass(eq=False)
class Player:
    id: int
    session: Session
    x: float
    y: float
    since: int = 0
    dx: int = 0
    dy: int = 0


class Arena:
    """The authoritative state: players by client id, moved by :meth:`step`."""

    def __init__(self, seed: int = 30) -> None:
        self.players: dict[str, Player] = {}
        self.tick = 0
        self._next_id = 1
        self._random = random.Random(seed)

    def join(self, session: Session) -> Player:
        player = self.players.get(session.client)
        if player is None:
            if len(self.players) >= MAX_PLAYERS:
                raise CommandError(ERROR_ARENA_FULL)
            x = self._random.uniform(RADIUS, WIDTH - RADIUS)
            y = self._random.uniform(RADIUS, HEIGHT - RADIUS)
            player = self.players[session.client] = Player(self._next_id, session, x, y, since=self.tick)
            self._next_id += 1
        return player

    def leave(self, client: str) -> None:
        self.players.pop(client, None)

    def steer(self, client: str, data: bytes) -> None:
        """Record a player's input, ``{"dx": -1|0|1, "dy": -1|0|1}``.

        Raises:
            CommandError: 107 for anything else, or from a client that isn't playing.
        """
        player = self.players.get(client)
        try:
            value = json.loads(data)
            dx, dy = value["dx"], value["dy"]
        except (ValueError, KeyError, TypeError):
            raise CommandError(ERROR_BAD_REQUEST) from None
        if (
            player is None
            or dx not in (-1, 0, 1)
            or dy not in (-1, 0, 1)
            or isinstance(dx, bool)
            or isinstance(dy, bool)
        ):
            raise CommandError(ERROR_BAD_REQUEST)
        player.dx, player.dy = dx, dy

    def step(self, dt: float) -> None:
        """Move every player; forget those whose connection left the arena."""
        self.tick += 1
        for client, player in list(self.players.items()):
            session = player.session
            # A player enters in the subscribe hook, before the subscription exists: it has a
            # second to become one.
            if session.closed or (ARENA not in session.subscriptions and self.tick - player.since > TICK_RATE):
                del self.players[client]
                continue
            if player.dx or player.dy:
                norm = SPEED * dt / (2**0.5 if player.dx and player.dy else 1)
                player.x = min(max(player.x + player.dx * norm, RADIUS), WIDTH - RADIUS)
                player.y = min(max(player.y + player.dy * norm, RADIUS), HEIGHT - RADIUS)

    def snapshot(self) -> dict[str, object]:
        return {"t": self.tick, "p": [[p.id, p.session.user, round(p.x), round(p.y)] for p in self.players.values()]}


async def game_loop(node: Node, arena: Arena) -> None:
    """Step the arena TICK_RATE times a second and publish each snapshot while anyone plays."""
    interval = 1 / TICK_RATE
    next_tick = time.monotonic()
    while True:
        had_players = bool(arena.players)
        arena.step(interval)
        if arena.players or had_players:
            await node.publish(ARENA, arena.snapshot())
        next_tick += interval
        delay = next_tick - time.monotonic()
        if delay < 0:  # late: skip the missed ticks rather than run them in a burst
            next_tick, delay = time.monotonic(), 0
        await asyncio.sleep(delay)


def setup(ctx: DemoContext) -> None:
    arena = Arena()

    @ctx.hooks.subscribing("game")
    async def entering(sub: SubscribeContext) -> SubscribeResult | None:
        if sub.channel != ARENA:
            raise CommandError(ERROR_BAD_REQUEST)
        player = arena.join(sub.session)
        # The subscribe reply tells the page which of the snapshot's players it is.
        return SubscribeResult(data=json.dumps({"id": player.id, "width": WIDTH, "height": HEIGHT}).encode())

    @ctx.hooks.publishing("game")
    async def steering(pub: PublishContext) -> PublishResult:
        if not pub.session.is_subscribed(pub.channel):
            raise CommandError(ERROR_BAD_REQUEST)
        arena.steer(pub.session.client, pub.data)
        # Inputs go to the server's loop only; what the others see comes in the snapshots.
        return PublishResult(skip=True)

    @ctx.hooks.disconnected
    async def gone(disconnect: DisconnectContext) -> None:
        arena.leave(disconnect.session.client)

    async def run_loop(node: Node) -> None:
        await game_loop(node, arena)

    ctx.task(run_loop)

    @ctx.route("state")
    async def state(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """The arena as the server sees it: players by id with their user and position."""
        return json_response(
            {str(p.id): {"user": p.session.user, "x": round(p.x), "y": round(p.y)} for p in arena.players.values()}
        )


DEMO = Demo(
    name="game",
    title="Multiplayer arena",
    summary=(
        "Players move with the keyboard in a shared arena: inputs go to an authoritative 30 Hz server loop, "
        "snapshots come back and each page interpolates between them."
    ),
    namespaces={"game": GAME},
    setup=setup,
)
