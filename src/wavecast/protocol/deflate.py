"""permessage-deflate (RFC 7692): compressed messages, negotiated in the handshake.

Defaults are chosen for servers that hold many connections: this side compresses with a
4 KiB window (``window_bits=12``) and ``memLevel=5`` whatever it negotiated, which the
peer can always decode, and asks a client that supports it to compress with a 4 KiB window
too. The compressor and decompressor are created on the first message that needs them,
and dropped after each message when context takeover is off, so an idle connection that
never sends compressed data costs nothing. Messages below ``min_size`` bytes go out
uncompressed: deflate rarely shrinks them and RFC 7692 lets any message skip compression.

Decompression never inflates more than the message may still grow by (see
:meth:`PerMessageDeflate.decode`), so a small "zip bomb" fails with 1009 after producing
at most ``max_message_size`` bytes.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

from ..exceptions import InvalidPayload, NegotiationError, PayloadTooBig
from .extensions import Extension, ExtensionParameter

__all__ = [
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
]

NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}


class PerMessageDeflate:
    """The negotiated extension of one connection.

    Args:
        remote_no_context_takeover: the peer resets its compressor after each message.
        local_no_context_takeover: this side must reset its compressor after each message.
        remote_max_window_bits: the window the peer compresses with, at most.
        local_max_window_bits: the window this side may compress with, at most.
        window_bits: the window this side compresses with, if smaller.
        mem_level: zlib's memLevel for compression (1-9; memory grows as 2**(mem_level+9)).
        min_size: messages shorter than this are sent uncompressed.
    """

    name = NAME

    __slots__ = (
        "_compressor",
        "_decompressor",
        "local_no_context_takeover",
        "mem_level",
        "min_size",
        "remote_max_window_bits",
        "remote_no_context_takeover",
        "window_bits",
    )

    def __init__(
        self,
        *,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        window_bits: int = 12,
        mem_level: int = 5,
        min_size: int = 0,
    ) -> None:
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        # zlib can't compress with an 8-bit window; negotiation never agrees to it.
        self.window_bits = max(9, min(window_bits, local_max_window_bits))
        self.mem_level = mem_level
        self.min_size = min_size
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, window_bits={self.window_bits})"
        )

    def decode(self, payload: bytes, *, fin: bool, max_size: int | None) -> bytes:
        """Inflate one frame of a compressed message, producing at most ``max_size`` bytes.

        Raises:
            PayloadTooBig: the message inflates past ``max_size``.
            InvalidPayload: the data isn't valid deflate.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(wbits=-self.remote_max_window_bits)
        if fin:
            # Section 7.2.2: the sender removed this empty block's tail; put it back.
            payload += _TAIL
        try:
            # Ask for one byte more than allowed: getting it proves the limit is exceeded,
            # without inflating the rest.
            data = decompressor.decompress(payload, 0 if max_size is None else max_size + 1)
        except zlib.error as exc:
            raise InvalidPayload(f"invalid compressed data: {exc}") from exc
        if max_size is not None and (len(data) > max_size or decompressor.unconsumed_tail):
            raise PayloadTooBig(f"message inflates past {max_size} more bytes, the limit on its size")
        if fin and self.remote_no_context_takeover:
            self._decompressor = None
        return data

    def encode(self, payload: bytes) -> tuple[bytes, bool]:
        """Deflate a whole message; short messages are left as they are."""
        if len(payload) < self.min_size:
            return payload, False
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = zlib.compressobj(wbits=-self.window_bits, memLevel=self.mem_level)
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.local_no_context_takeover:
            self._compressor = None
        # Section 7.2.1: remove the empty block's tail that every sync flush ends with.
        return data[:-4], True


def _parse_params(params: Sequence[ExtensionParameter]) -> dict[str, int | bool]:
    """Check offer or response parameters: known names, each once, valid values."""
    result: dict[str, int | bool] = {}
    for name, value in params:
        if name in result:
            raise NegotiationError(f"duplicate {NAME} parameter: {name}")
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise NegotiationError(f"{name} takes no value, got {value}")
            result[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if value is None:
                # Only a client may send client_max_window_bits without a value; the
                # callers check which side sent it.
                result[name] = True
            elif value in _WINDOW_BITS:
                result[name] = _WINDOW_BITS[value]
            else:
                raise NegotiationError(f"invalid {name}: {value}")
        else:
            raise NegotiationError(f"unknown {NAME} parameter: {name}")
    return result


def _check_window_bits(name: str, value: int | None) -> None:
    if value is not None and not 8 <= value <= 15:
        raise ValueError(f"{name} must be between 8 and 15, got {value}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Compressor:
    """What both sides' factories set for the compressor of this side, checked alike."""

    window_bits: int = 12
    mem_level: int = 5
    min_size: int = 128
    name: str = dataclasses.field(default=NAME, init=False)

    def __post_init__(self) -> None:
        if not 9 <= self.window_bits <= 15:
            raise ValueError(f"window_bits must be between 9 and 15, got {self.window_bits}")
        if not 1 <= self.mem_level <= 9:
            raise ValueError(f"mem_level must be between 1 and 9, got {self.mem_level}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerPerMessageDeflateFactory(_Compressor):
    """Accept a client's permessage-deflate offer.

    Args:
        server_no_context_takeover: reset the compressor after each message (less
            memory between messages, less compression).
        client_no_context_takeover: ask the client to do the same.
        client_max_window_bits: ask a client that supports it to compress with at most this
            window (9-15), which bounds this side's decompression memory.
        require_client_max_window_bits: decline clients that can't limit their window.
        window_bits: the window this side compresses with (9-15).
        mem_level: zlib's memLevel for compression (1-9).
        min_size: messages shorter than this are sent uncompressed.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    client_max_window_bits: int | None = 12
    require_client_max_window_bits: bool = False

    def __post_init__(self) -> None:
        _check_window_bits("client_max_window_bits", self.client_max_window_bits)
        super().__post_init__()

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Answer one offer (RFC 7692 section 7.1); raise NegotiationError to decline it."""
        if any(extension.name == NAME for extension in accepted):
            raise NegotiationError(f"{NAME} already accepted")
        offer = _parse_params(params)
        server_no_context_takeover = bool(offer.get("server_no_context_takeover")) or self.server_no_context_takeover
        client_no_context_takeover = bool(offer.get("client_no_context_takeover")) or self.client_no_context_takeover

        server_max_window_bits = offer.get("server_max_window_bits")
        if server_max_window_bits is True:
            raise NegotiationError("server_max_window_bits needs a value")
        if server_max_window_bits == 8:
            # zlib can't compress with an 8-bit window; the client may offer a fallback.
            raise NegotiationError("server_max_window_bits=8 isn't supported")

        # The client may cap its window when it offered the parameter.
        client_offer = offer.get("client_max_window_bits")
        client_max_window_bits: int | None
        if client_offer is None:
            if self.require_client_max_window_bits:
                raise NegotiationError("client_max_window_bits is required")
            client_max_window_bits = None
        elif self.client_max_window_bits is None:
            client_max_window_bits = None if client_offer is True else int(client_offer)
        elif client_offer is True:
            client_max_window_bits = self.client_max_window_bits
        else:
            client_max_window_bits = min(int(client_offer), self.client_max_window_bits)

        response: list[ExtensionParameter] = []
        if server_no_context_takeover:
            response.append(("server_no_context_takeover", None))
        if client_no_context_takeover:
            response.append(("client_no_context_takeover", None))
        if server_max_window_bits is not None:
            response.append(("server_max_window_bits", str(server_max_window_bits)))
        if client_max_window_bits is not None:
            response.append(("client_max_window_bits", str(client_max_window_bits)))
        extension = PerMessageDeflate(
            remote_no_context_takeover=client_no_context_takeover,
            local_no_context_takeover=server_no_context_takeover,
            remote_max_window_bits=client_max_window_bits or 15,
            local_max_window_bits=int(server_max_window_bits or 15),
            window_bits=self.window_bits,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )
        return response, extension


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientPerMessageDeflateFactory(_Compressor):
    """Offer permessage-deflate to a server and apply its answer.

    Args:
        server_no_context_takeover: ask the server to reset its compressor per message.
        client_no_context_takeover: reset this side's compressor per message.
        server_max_window_bits: ask the server to compress with at most this window,
            which bounds this side's decompression memory; ``None`` asks nothing.
        client_max_window_bits: ``True`` tells the server it may cap this side's window;
            a number caps it; ``None`` doesn't offer the parameter.
        window_bits: the window this side compresses with (9-15).
        mem_level: zlib's memLevel for compression (1-9).
        min_size: messages shorter than this are sent uncompressed.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | bool | None = True

    def __post_init__(self) -> None:
        _check_window_bits("server_max_window_bits", self.server_max_window_bits)
        if self.client_max_window_bits is not True and self.client_max_window_bits is not False:
            _check_window_bits("client_max_window_bits", self.client_max_window_bits)
        super().__post_init__()

    def get_request_params(self) -> list[ExtensionParameter]:
        params: list[ExtensionParameter] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def process_response_params(self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]) -> Extension:
        """Check the server's answer against the offer (RFC 7692 section 7.1)."""
        if any(extension.name == NAME for extension in accepted):
            raise NegotiationError(f"{NAME} accepted twice")
        answer = _parse_params(params)
        if self.server_no_context_takeover and not answer.get("server_no_context_takeover"):
            raise NegotiationError("server didn't agree to server_no_context_takeover")
        server_max_window_bits = answer.get("server_max_window_bits")
        if server_max_window_bits is True:
            raise NegotiationError("server_max_window_bits needs a value")
        if self.server_max_window_bits is not None:
            if server_max_window_bits is None:
                raise NegotiationError("server didn't answer server_max_window_bits")
            if server_max_window_bits > self.server_max_window_bits:
                raise NegotiationError(f"server_max_window_bits={server_max_window_bits} exceeds the offer")
        client_max_window_bits = answer.get("client_max_window_bits")
        if client_max_window_bits is not None:
            if client_max_window_bits is True:
                raise NegotiationError("client_max_window_bits needs a value")
            if not self.client_max_window_bits:
                raise NegotiationError("server sent client_max_window_bits, which wasn't offered")
            if self.client_max_window_bits is not True and client_max_window_bits > self.client_max_window_bits:
                raise NegotiationError(f"client_max_window_bits={client_max_window_bits} exceeds the offer")
            if client_max_window_bits == 8:
                raise NegotiationError("client_max_window_bits=8 isn't supported: zlib can't compress with it")
        elif self.client_max_window_bits is not True and self.client_max_window_bits:
            client_max_window_bits = self.client_max_window_bits
        return PerMessageDeflate(
            remote_no_context_takeover=bool(answer.get("server_no_context_takeover")),
            local_no_context_takeover=bool(answer.get("client_no_context_takeover")) or self.client_no_context_takeover,
            remote_max_window_bits=int(server_max_window_bits or 15),
            local_max_window_bits=int(client_max_window_bits or 15),
            window_bits=self.window_bits,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )
