"""Limits on what a peer may send, with finite defaults; ``None`` turns one off."""

from __future__ import annotations

import dataclasses

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Limits that a protocol enforces on its peer.

    Attributes:
        max_message_size: bytes in one message, after decompression; exceeding it closes
            with 1009.
        max_frame_size: bytes in the payload of one frame; exceeding it closes with 1009
            before any of the payload is read.
        max_fragments: frames in one fragmented message; exceeding it closes with 1009.
        max_header_count: headers in the opening handshake; exceeding it answers 431.
        max_header_line: bytes in the request line, the status line or one header line;
            exceeding it answers 431 (414 for the request line).
        max_body_size: bytes in the body of a plain HTTP request that a server answers
            itself (health checks, the HTTP API); exceeding it answers 413.
    """

    max_message_size: int | None = 2**20
    max_frame_size: int | None = 2**20
    max_fragments: int | None = 1024
    max_header_count: int | None = 128
    max_header_line: int | None = 8192
    max_body_size: int | None = 2**20

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{field.name} must be a positive integer or None, got {value!r}")


DEFAULT_LIMITS = Limits()
