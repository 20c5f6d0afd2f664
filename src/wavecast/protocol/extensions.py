"""The extension negotiation hook (RFC 6455 section 9).

An extension factory takes part in the opening handshake; the :class:`Extension` it returns
then transforms the payloads of data messages. wavecast supports one extension that uses
RSV1 per connection, which is what permessage-deflate (RFC 7692) needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParameter",
    "ServerExtensionFactory",
]

#: One parameter of an extension offer: ``("client_max_window_bits", "10")``, or
#: ``("server_no_context_takeover", None)`` for a parameter without a value.
ExtensionParameter = tuple[str, str | None]


class Extension(Protocol):
    """A negotiated extension that transforms the payload of data messages."""

    @property
    def name(self) -> str:
        """The extension's registered name, such as ``permessage-deflate``."""
        ...

    def decode(self, payload: bytes, *, fin: bool, max_size: int | None) -> bytes:
        """Decode one frame's payload of a message whose first frame had RSV1 set.

        Args:
            payload: the unmasked payload of the frame.
            fin: whether this is the last frame of the message.
            max_size: how many decoded bytes the message may still grow by; ``None`` is
                unlimited. The extension must stop decoding past it, not decode first and
                check later.

        Raises:
            PayloadTooBig: the decoded message would exceed ``max_size``.
            RemoteProtocolError: the payload can't be decoded.
        """
        ...

    def encode(self, payload: bytes) -> tuple[bytes, bool]:
        """Encode a whole message; return the payload and whether to set RSV1."""
        ...


class ServerExtensionFactory(Protocol):
    """Answers a client's offer of one extension."""

    @property
    def name(self) -> str:
        """The extension's registered name, such as ``permessage-deflate``."""
        ...

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept an offer: return the response parameters and the extension.

        Raises:
            NegotiationError: to decline this offer; the server tries the client's next one.
        """
        ...


class ClientExtensionFactory(Protocol):
    """Makes a client's offer of one extension and checks the server's answer."""

    @property
    def name(self) -> str:
        """The extension's registered name, such as ``permessage-deflate``."""
        ...

    def get_request_params(self) -> list[ExtensionParameter]:
        """Return the parameters to offer."""
        ...

    def process_response_params(self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]) -> Extension:
        """Return the extension the server accepted with ``params``.

        Raises:
            NegotiationError: the server's parameters don't match the offer.
        """
        ...
