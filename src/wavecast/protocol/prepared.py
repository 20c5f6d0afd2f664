"""A message framed once and sent on many connections."""

from __future__ import annotations

from .frames import OP_BINARY, OP_TEXT, serialize_frame

__all__ = ["PreparedMessage"]


class PreparedMessage:
    """A text or binary message whose unmasked, uncompressed frame is built once.

    Broadcasts and channel fan-out send the same bytes to every server connection that
    negotiated no extension; a connection with compression encodes ``payload`` itself.

    Args:
        payload: the message; text must be valid UTF-8.
        text: whether it is a text message.
    """

    __slots__ = ("_frame", "opcode", "payload")

    def __init__(self, payload: bytes, *, text: bool) -> None:
        self.payload = payload
        self.opcode = OP_TEXT if text else OP_BINARY
        self._frame: bytes | None = None

    @classmethod
    def of(cls, message: str | bytes | bytearray | memoryview) -> PreparedMessage:
        """Prepare a :class:`str` as text or bytes-like as binary."""
        if isinstance(message, str):
            return cls(message.encode(), text=True)
        return cls(bytes(message), text=False)

    @property
    def frame(self) -> bytes:
        """The whole frame as a server sends it: unmasked, uncompressed, final."""
        frame = self._frame
        if frame is None:
            frame = self._frame = serialize_frame(self.opcode, self.payload)
        return frame

    def __len__(self) -> int:
        return len(self.payload)
