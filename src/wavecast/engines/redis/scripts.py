"""The Lua scripts of the Redis engine, loaded from the files beside this module."""

from __future__ import annotations

import importlib.resources
from typing import Any

__all__ = ["SCRIPT_NAMES", "Scripts", "read_script"]

SCRIPT_NAMES = ("publish", "publish_idempotent", "history", "presence_add", "presence_get", "presence_remove")


def read_script(name: str) -> str:
    """The source of ``lua/<name>.lua``."""
    return importlib.resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


class Scripts:
    """Every script registered on one client; each runs with EVALSHA, loading itself once."""

    def __init__(self, redis: Any) -> None:
        self.publish = redis.register_script(read_script("publish"))
        self.publish_idempotent = redis.register_script(read_script("publish_idempotent"))
        self.history = redis.register_script(read_script("history"))
        self.presence_add = redis.register_script(read_script("presence_add"))
        self.presence_get = redis.register_script(read_script("presence_get"))
        self.presence_remove = redis.register_script(read_script("presence_remove"))
