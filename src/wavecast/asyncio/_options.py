"""The settings of a connection, which serve() and connect() build once and pass on."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from ..protocol.deflate import NAME as DEFLATE
from ..protocol.extensions import ClientExtensionFactory, ServerExtensionFactory
from ..protocol.limits import DEFAULT_LIMITS, Limits


class _Unset(enum.Enum):
    UNSET = enum.auto()


#: The default of ``max_size``: not given, so ``limits`` decides alone.
UNSET: Literal[_Unset.UNSET] = _Unset.UNSET

MaxSize = int | None | Literal[_Unset.UNSET]

#: The values of ``compression``; ``None`` turns compression off.
COMPRESSIONS = ("deflate",)

Factory = TypeVar("Factory", ServerExtensionFactory, ClientExtensionFactory)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOptions:
    """What every connection of a server, or of a :func:`connect`, is configured with.

    Each field is the argument of the same name of :func:`serve` and :func:`connect`,
    with the same default; ``None`` turns a limit or a timer off.

    Attributes:
        limits: limits on what the peer may send.
        compression: ``"deflate"`` negotiates permessage-deflate; ``None`` turns it off.
        open_timeout: seconds for the opening handshake.
        ping_interval: seconds between keepalive pings.
        ping_timeout: seconds to wait for the pong before failing with 1011.
        close_timeout: seconds to wait for the closing handshake and the end of TCP.
        max_queue: received messages to buffer before pausing reads.
        write_limit: bytes buffered for writing above which ``send()`` waits, broadcasts skip
            the connection, and reading pauses until the peer reads.
        write_delay: seconds that messages wait before they're written, so that those sent
            meanwhile leave in the same write; ``None`` writes at the end of each turn of the
            event loop. Control frames and the closing handshake don't wait.
        socket_send_buffer: the kernel's send buffer of each socket (``SO_SNDBUF``), in bytes;
            ``None`` leaves the kernel's own, which Linux grows to megabytes for a fast link.

    Raises:
        ValueError: a field has a value of the wrong type or range; the message names it.
    """

    limits: Limits = DEFAULT_LIMITS
    compression: str | None = "deflate"
    open_timeout: float | None = 10
    ping_interval: float | None = 20
    ping_timeout: float | None = 20
    close_timeout: float | None = 10
    max_queue: int | None = 16
    write_limit: int = 32768
    write_delay: float | None = None
    socket_send_buffer: int | None = None

    def __post_init__(self) -> None:
        if self.compression is not None and self.compression not in COMPRESSIONS:
            raise ValueError(f"unsupported compression: {self.compression}")
        for name in ("open_timeout", "ping_interval", "ping_timeout", "close_timeout", "write_delay"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a non-negative number or None, got {value!r}")
        _check_int("max_queue", self.max_queue, minimum=0, optional=True)
        _check_int("write_limit", self.write_limit, minimum=0, optional=False)
        _check_int("socket_send_buffer", self.socket_send_buffer, minimum=1, optional=True)

    def with_compression(self, extensions: Sequence[Factory], deflate: Callable[[], Factory]) -> tuple[Factory, ...]:
        """Return ``extensions`` and, when compression is on, a ``deflate()`` factory after them.

        A permessage-deflate factory already in ``extensions`` keeps its own settings.
        """
        factories = list(extensions)
        if self.compression == "deflate" and not any(factory.name == DEFLATE for factory in factories):
            factories.append(deflate())
        return tuple(factories)


def _check_int(name: str, value: int | None, *, minimum: int, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum else "a non-negative integer"
        raise ValueError(f"{name} must be {kind}{' or None' if optional else ''}, got {value!r}")


#: The defaults of :func:`serve` and :func:`connect`.
DEFAULT_OPTIONS = ConnectionOptions()

_FIELDS = frozenset(field.name for field in dataclasses.fields(ConnectionOptions))


def connection_options(caller: str, arguments: Mapping[str, Any]) -> ConnectionOptions:
    """Build the options from the arguments of ``caller``, :func:`serve` or :func:`connect`.

    Each argument named as a field sets it, so that an option is named once in the signature
    and once here; ``max_size`` goes into ``limits`` (:func:`apply_max_size`).

    Raises:
        ValueError: an argument has a value of the wrong type or range.
        TypeError: both ``max_size`` and ``limits.max_message_size`` are given.
    """
    settings = {name: value for name, value in arguments.items() if name in _FIELDS}
    settings["limits"] = apply_max_size(arguments["limits"], arguments["max_size"], caller)
    return ConnectionOptions(**settings)


def apply_max_size(limits: Limits, max_size: MaxSize, caller: str) -> Limits:
    """Return ``limits`` with ``max_size`` bytes as the limit on a message, as websockets' ``max_size``.

    Frames follow the message limit, so that a message sent in one frame may reach it, unless
    ``limits`` sets its own ``max_frame_size``; ``None`` turns both off.

    Raises:
        TypeError: ``limits`` sets ``max_message_size`` too.
    """
    if max_size is UNSET:
        return limits
    if limits.max_message_size != DEFAULT_LIMITS.max_message_size:
        raise TypeError(
            f"{caller}() got max_size={max_size!r} and limits with max_message_size={limits.max_message_size!r}; "
            "pass only one of them"
        )
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise ValueError(f"max_size must be a positive integer or None, got {max_size!r}")
    frame = max_size if limits.max_frame_size == DEFAULT_LIMITS.max_frame_size else limits.max_frame_size
    return dataclasses.replace(limits, max_message_size=max_size, max_frame_size=frame)
