"""The chat: rooms, who is here, history on joining, and recovery after a lost connection.

The page is the one ``wavecast serve`` ships as its demo (``src/wavecast/static/chat/``);
this module gives it its namespace. Run it alone with ``python -m examples.chat``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from wavecast.realtime import ChannelOptions

from ..kit import Demo

__all__ = ["DEMO"]

CHAT = ChannelOptions(
    presence=True,
    join_leave=True,
    force_push_join_leave=True,
    history_size=100,
    history_ttl=3600.0,
    force_recovery=True,
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    allow_presence_for_subscriber=True,
    allow_history_for_subscriber=True,
)

DEMO = Demo(
    name="chat",
    title="Chat",
    summary="Rooms with who is here, the last messages on joining, and what was missed after a lost connection.",
    namespaces={"chat": CHAT},
    static=Path(str(files("wavecast").joinpath("static", "chat"))),
)
