"""The sans-I/O WebSocket protocol (RFC 6455 sections 5 to 7), shared by both sides.

Bytes go in through :meth:`Protocol.receive_data` and :meth:`Protocol.receive_eof`; events
come out of :meth:`Protocol.events_received` and bytes to write out of
:meth:`Protocol.data_to_send`, where an empty ``bytes`` means "close the write side".

The frame parser is incremental and works on whatever bytes it has: it yields the same
events however the stream is split, it never allocates a payload before its bytes arrive,
and it validates the UTF-8 of a text message chunk by chunk, so invalid data fails the
connection as soon as the offending byte is read (RFC 6455 section 8.1).
"""

from __future__ import annotations

import codecs
import enum
import logging
import os

from ..codes import CloseCode
from ..exceptions import (
    InvalidPayload,
    LocalProtocolError,
    PayloadTooBig,
    RemoteProtocolError,
)
from .events import Close, Event, Ping, Pong
from .extensions import Extension
from .frames import (
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Payload,
    apply_mask,
    frame_header,
    native,
    parse_close,
    serialize_close,
)
from .limits import DEFAULT_LIMITS, Limits
from .state import CLOSED, CLOSING, CONNECTING, OPEN, Action, State, next_state

__all__ = ["Protocol", "Side"]

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")

# Payloads above this size are queued apart from their header instead of being copied
# after it; the I/O layer writes both without joining them.
_COPY_THRESHOLD = 4096
# A binary message in one frame of this many bytes arrives in several reads: its payload is
# unmasked into one buffer as they come, not kept in pieces and joined. Past the upper bound the
# pieces are kept, so that a peer that announces a huge frame gets no buffer before it sends it.
_ASSEMBLE_MIN = 64 * 1024
_ASSEMBLE_MAX = 16 * 1024 * 1024

# The C twins of the frame builder and of the parser's common case, when they're built.
_build_frame = native.build_frame if native is not None else None
_parse_frames = native.parse_frames if native is not None else None


class Side(enum.Enum):
    """Which end of the connection a protocol plays."""

    SERVER = "server"
    CLIENT = "client"


SERVER = Side.SERVER
CLIENT = Side.CLIENT


class _FanOutFields:
    """The fields that a broadcast reads for every connection it reaches, in one cache line.

    The slots of a base class come first in an instance; see wavecast.asyncio.connection.
    """

    __slots__ = ("_out", "_out_fragmented", "state")

    # The bytes to write, None while there are none (see Protocol._queue).
    _out: list[bytes] | None
    _out_fragmented: int
    state: State


class Protocol(_FanOutFields):
    """The framing, control frames and closing handshake of one WebSocket connection.

    Args:
        side: whether this end is the server or the client.
        limits: the limits to enforce on the peer.
        state: the initial state; a connection created after an external handshake starts OPEN.
        logger: where to log protocol errors; ``wavecast.protocol`` by default.
    """

    __slots__ = (
        "_discard",
        "_events",
        "_f_fin",
        "_f_mask",
        "_f_offset",
        "_f_opcode",
        "_f_parts",
        "_f_payload",
        "_f_remaining",
        "_leftover",
        "_m_compressed",
        "_m_decoder",
        "_m_frames",
        "_m_opcode",
        "_m_parts",
        "_m_size",
        "_mask_frames",
        "close_rcvd",
        "close_rcvd_then_sent",
        "close_sent",
        "eof_rcvd",
        "eof_sent",
        "extension",
        "limits",
        "logger",
        "protocol_error",
        "side",
    )

    def __init__(
        self,
        side: Side,
        *,
        limits: Limits = DEFAULT_LIMITS,
        state: State = OPEN,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.side = side
        self.limits = limits
        self.state = state
        self.logger = logger if logger is not None else logging.getLogger("wavecast.protocol")
        #: The negotiated extension, when one uses RSV1 (permessage-deflate).
        self.extension: Extension | None = None
        #: The close frame received, once one has been.
        self.close_rcvd: Close | None = None
        #: The close frame sent, once one has been.
        self.close_sent: Close | None = None
        #: Whether the peer started the closing handshake; ``None`` until both frames passed.
        self.close_rcvd_then_sent: bool | None = None
        #: The error that made this side fail the connection, if the peer broke the protocol.
        self.protocol_error: RemoteProtocolError | None = None
        self.eof_sent = False
        self.eof_rcvd = False

        # Lists only while events wait for events_received() and bytes for data_to_send():
        # an idle connection holds neither (64 bytes each).
        self._events: list[Event] | None = None
        self._out = None
        self._mask_frames = side is CLIENT
        self._discard = False
        # Bytes of an incomplete frame header, kept until the rest arrives.
        self._leftover = b""
        # The frame whose payload is arriving in pieces: its remaining length and state.
        self._f_remaining = 0
        self._f_opcode = 0
        self._f_fin = False
        self._f_mask: bytes | None = None
        self._f_offset = 0
        # Control frames and compressed frames are gathered whole before they're handled.
        self._f_parts: list[bytes] | None = None
        # A large binary message in one frame is unmasked into its final bytes as they arrive.
        self._f_payload: Payload | None = None
        # The data message in progress: opcode (0 when none), pieces, size and frame count.
        self._m_opcode = 0
        # None between messages: an idle connection doesn't hold an empty list.
        self._m_parts: list[bytes] | list[str] | None = None
        self._m_size = 0
        self._m_frames = 0
        self._m_compressed = False
        self._m_decoder: codecs.IncrementalDecoder | None = None
        # Outgoing fragmented message in progress: 0, or the opcode it started with.
        self._out_fragmented = 0

    # --- output ------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """Return the bytes to write, and forget them; ``b""`` asks to close the write side."""
        out, self._out = self._out, None
        return out if out is not None else []

    def _queue(self, data: bytes) -> None:
        """Add ``data`` to the bytes to write."""
        out = self._out
        if out is None:
            out = self._out = []
        out.append(data)

    def events_received(self) -> list[Event]:
        """Return the events received since the last call, and forget them."""
        events, self._events = self._events, None
        return events if events is not None else []

    def _event(self, event: Event) -> None:
        """Record an event for events_received()."""
        events = self._events
        if events is None:
            events = self._events = []
        events.append(event)

    def close_expected(self) -> bool:
        """Tell whether the peer should close the TCP connection soon.

        The I/O layer starts its close timeout when this turns true.
        """
        return self.state is CLOSING or (self.state is CLOSED and not self.eof_rcvd)

    @property
    def close_code(self) -> int | None:
        """The close code received, 1006 if the connection closed without one, else ``None``."""
        if self.close_rcvd is not None:
            return self.close_rcvd.code
        if self.state is CLOSED:
            return CloseCode.ABNORMAL_CLOSURE
        return None

    @property
    def close_reason(self) -> str | None:
        """The close reason received, ``""`` if none was, ``None`` while open."""
        if self.close_rcvd is not None:
            return self.close_rcvd.reason
        if self.state is CLOSED:
            return ""
        return None

    # --- sending -------------------------------------------------------------------------

    def _check_send(self, action: Action) -> None:
        if self.state is not OPEN:
            next_state(self.state, action)  # raises "can't ... when state is ..."

    def _queue_frame(self, opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> None:
        out = self._out
        if out is None:
            out = self._out = []
        if self._mask_frames:
            mask = os.urandom(4)
            if _build_frame is not None:
                # Masking copies the payload anyway: the header goes in front in the same pass.
                out.append(_build_frame(opcode, payload, fin, rsv1, mask))
                return
            header = frame_header(opcode, len(payload), fin=fin, rsv1=rsv1, mask=mask)
            payload = apply_mask(payload, mask)
        elif len(payload) <= _COPY_THRESHOLD and _build_frame is not None:
            out.append(_build_frame(opcode, payload, fin, rsv1, None))
            return
        else:
            header = frame_header(opcode, len(payload), fin=fin, rsv1=rsv1)
        if len(payload) > _COPY_THRESHOLD:
            out.append(header)
            out.append(payload)
        else:
            out.append(header + payload)

    def _send_data(self, opcode: int, payload: bytes, fin: bool) -> None:
        if self._out_fragmented:
            raise LocalProtocolError(
                "can't start a new message while a fragmented message is in progress; "
                "send its continuation frames first"
            )
        rsv1 = False
        if fin and self.extension is not None:
            payload, rsv1 = self.extension.encode(payload)
        elif not fin:
            # Fragmented messages go out uncompressed: the extension encodes whole messages.
            self._out_fragmented = opcode
        self._queue_frame(opcode, payload, fin=fin, rsv1=rsv1)

    def send_text(self, data: str, *, fin: bool = True) -> None:
        """Queue a text message, or its first fragment when ``fin`` is false."""
        self._check_send(Action.SEND_DATA)
        self._send_data(OP_TEXT, data.encode(), fin)

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> None:
        """Queue a binary message, or its first fragment when ``fin`` is false."""
        self._check_send(Action.SEND_DATA)
        self._send_data(OP_BINARY, bytes(data), fin)

    def send_continuation(self, data: str | bytes | bytearray | memoryview, *, fin: bool) -> None:
        """Queue the next fragment of the message started with ``fin=False``."""
        self._check_send(Action.SEND_DATA)
        if not self._out_fragmented:
            raise LocalProtocolError("can't send a continuation frame: no fragmented message in progress")
        if isinstance(data, str):
            if self._out_fragmented != OP_TEXT:
                raise LocalProtocolError("can't continue a binary message with text")
            payload = data.encode()
        else:
            payload = bytes(data)
        if fin:
            self._out_fragmented = 0
        self._queue_frame(OP_CONT, payload, fin=fin)

    def send_prepared(self, frame: bytes) -> None:
        """Queue a whole data frame that was serialized beforehand.

        This serves broadcasts, which frame a message once for many connections. Only a
        server without a negotiated extension can do it: client frames need their own mask.
        """
        self._check_send(Action.SEND_DATA)
        if self._mask_frames or self.extension is not None or self._out_fragmented:
            raise LocalProtocolError("can't send a prepared frame on this connection")
        self._queue(frame)

    def send_ping(self, data: bytes = b"") -> None:
        """Queue a ping; ``data`` holds at most 125 bytes."""
        self._check_send(Action.SEND_PING)
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError(f"ping payload is {len(data)} bytes, expected no more than 125 bytes")
        self._queue_frame(OP_PING, bytes(data))

    def send_pong(self, data: bytes = b"") -> None:
        """Queue an unsolicited pong; ``data`` holds at most 125 bytes."""
        self._check_send(Action.SEND_PONG)
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError(f"pong payload is {len(data)} bytes, expected no more than 125 bytes")
        self._queue_frame(OP_PONG, bytes(data))

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 section 7.1.2)."""
        state = next_state(self.state, Action.SEND_CLOSE)
        # CLOSING allows a close frame only when none went out yet: a received close frame is
        # answered automatically, and a second close frame would break RFC 6455 section 5.5.1.
        if self.close_sent is not None:
            raise LocalProtocolError("can't send a close frame twice")
        # An invalid code must leave the connection as it was.
        payload = serialize_close(code, reason)
        self.state = state
        self._queue_frame(OP_CLOSE, payload)
        self.close_sent = Close(code, reason)

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (RFC 6455 section 7.1.7).

        When the connection is open, a close frame with ``code`` goes out first, unless
        ``code`` is 1006, which means "close TCP without a close frame". A server then
        closes TCP at once; a client waits for the server to do it. Input received after this
        is discarded.
        """
        if self.state is OPEN and code != CloseCode.ABNORMAL_CLOSURE:
            reason = _truncate_reason(reason)
            self._queue_frame(OP_CLOSE, serialize_close(code, reason))
            self.close_sent = Close(code, reason)
        self.state = next_state(self.state, Action.FAIL)
        if (self.side is SERVER or self.state is CLOSED) and not self.eof_sent:
            self.send_eof()
        self._discard = True

    def send_eof(self) -> None:
        """Ask the I/O layer to close the write side of the connection."""
        if self.eof_sent:
            raise LocalProtocolError("can't send EOF twice")
        self.eof_sent = True
        self._queue(b"")

    # --- receiving -----------------------------------------------------------------------

    def receive_eof(self) -> None:
        """Record that the peer closed its write side; safe to call twice."""
        if self.eof_rcvd:
            return
        self.eof_rcvd = True
        self.state = next_state(self.state, Action.RECEIVE_EOF)
        self._discard = True
        if not self.eof_sent:
            self.send_eof()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the network.

        A protocol error never escapes: the connection fails with the error's close code,
        ``protocol_error`` records it, and later input is discarded.
        """
        if self._discard or not data:
            return
        if self._leftover:
            data = self._leftover + data
            self._leftover = b""
        try:
            if self.state is CONNECTING:
                data = self._receive_handshake(data)
                if not data or self.state is not OPEN:
                    return
            self._parse(data)
        except RemoteProtocolError as exc:
            self._fail_remote(exc)

    def _receive_handshake(self, data: bytes) -> bytes:
        """Consume handshake bytes; return what follows the handshake, once it's complete."""
        raise LocalProtocolError("can't receive data when state is CONNECTING")

    def _fail_remote(self, exc: RemoteProtocolError) -> None:
        self.protocol_error = exc
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("! failing connection: %s", exc)
        self.fail(exc.close_code, str(exc))

    def _parse(self, data: bytes) -> None:
        events = self._events
        if events is None:
            events = self._events = []
        n = len(data)
        i = 0
        limits = self.limits
        parse_frames = _parse_frames
        if parse_frames is not None:
            expect_mask = not self._mask_frames
            fast_max_frame = -1 if limits.max_frame_size is None else limits.max_frame_size
            fast_max_message = -1 if limits.max_message_size is None else limits.max_message_size
        while i < n:
            if self._f_remaining:
                i = self._continue_frame(data, i)
                if self._discard:
                    return
                continue
            if parse_frames is not None and not self._m_opcode:
                # The C parser takes the run of whole, unfragmented data frames; it stops at
                # anything else (control frames, fragments, errors), which is parsed below.
                i = parse_frames(data, i, expect_mask, fast_max_frame, fast_max_message, events)
                if i >= n:
                    break

            # The frame header: 2 bytes, then 0, 2 or 8 bytes of length, then 4 of mask.
            if n - i < 2:
                break
            b0 = data[i]
            b1 = data[i + 1]
            length = b1 & 0x7F
            header_len = 2 if length < 126 else 4 if length == 126 else 10
            masked = b1 & 0x80
            if masked:
                header_len += 4
            if n - i < header_len:
                break
            if length == 126:
                length = (data[i + 2] << 8) | data[i + 3]
                if length < 126:
                    raise RemoteProtocolError(f"{length}-byte payload length not minimally encoded")
            elif length == 127:
                length = int.from_bytes(data[i + 2 : i + 10], "big")
                if length >> 63:
                    raise RemoteProtocolError("payload length has its most significant bit set")
                if length < 65536:
                    raise RemoteProtocolError(f"{length}-byte payload length not minimally encoded")
            if (masked != 0) is self._mask_frames:
                raise RemoteProtocolError("incorrect masking: clients must mask frames, servers must not")
            mask = data[i + header_len - 4 : i + header_len] if masked else None
            if b0 & 0x30:
                raise RemoteProtocolError("reserved bits RSV2 and RSV3 must be 0")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            rsv1 = b0 & 0x40
            i += header_len

            if opcode & 0x08:
                if opcode != OP_CLOSE and opcode != OP_PING and opcode != OP_PONG:
                    raise RemoteProtocolError(f"invalid opcode: {opcode:#x}")
                if not fin:
                    raise RemoteProtocolError("fragmented control frame")
                if length > MAX_CONTROL_PAYLOAD:
                    raise RemoteProtocolError(f"control frame of {length} bytes, expected no more than 125 bytes")
                if rsv1:
                    raise RemoteProtocolError("reserved bit RSV1 must be 0 on a control frame")
                if n - i >= length:
                    payload = data[i : i + length]
                    i += length
                    if mask is not None:
                        payload = apply_mask(payload, mask)
                    self._control_frame(opcode, payload)
                    if self._discard:
                        return
                else:
                    self._start_frame(opcode, fin, mask, length, buffered=True)
                continue

            if opcode > OP_BINARY:
                raise RemoteProtocolError(f"invalid opcode: {opcode:#x}")
            max_frame = limits.max_frame_size
            if max_frame is not None and length > max_frame:
                raise PayloadTooBig(f"frame of {length} bytes, expected no more than {max_frame} bytes")

            if fin and not rsv1 and not self._m_opcode and (opcode in (OP_TEXT, OP_BINARY)):
                # The common case: a whole message in one frame.
                max_size = limits.max_message_size
                if max_size is not None and length > max_size:
                    raise PayloadTooBig(f"message of {length} bytes, expected no more than {max_size} bytes")
                if n - i >= length:
                    payload = data[i : i + length]
                    i += length
                    if mask is not None:
                        payload = apply_mask(payload, mask)
                    if opcode == OP_TEXT:
                        try:
                            events.append(payload.decode())
                        except UnicodeDecodeError as exc:
                            raise InvalidPayload("invalid UTF-8 in text message") from exc
                    else:
                        events.append(payload)
                    continue

            self._start_data_frame(opcode, fin, rsv1, length)
            if length == 0:
                self._message_chunk(b"", bool(fin))
            else:
                self._start_frame(opcode, fin, mask, length, buffered=self._m_compressed)
                if fin and opcode == OP_BINARY and not rsv1 and _ASSEMBLE_MIN <= length <= _ASSEMBLE_MAX:
                    self._f_payload = Payload(length)

        if i < n:
            self._leftover = data[i:]

    def _start_data_frame(self, opcode: int, fin: int, rsv1: int, length: int) -> None:
        """Check a data frame against the message in progress and the limits."""
        limits = self.limits
        if opcode == OP_CONT:
            if not self._m_opcode:
                raise RemoteProtocolError("unexpected continuation frame")
            if rsv1:
                raise RemoteProtocolError("reserved bit RSV1 must be 0 on a continuation frame")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._m_opcode:
                raise RemoteProtocolError("expected a continuation frame, got a new message")
            if rsv1 and self.extension is None:
                raise RemoteProtocolError("reserved bit RSV1 must be 0 without a negotiated extension")
            self._m_opcode = opcode
            self._m_compressed = bool(rsv1)
            self._m_parts = []
            self._m_size = 0
            self._m_frames = 0
            self._m_decoder = _Utf8Decoder() if opcode == OP_TEXT else None
        else:
            raise RemoteProtocolError(f"invalid opcode: {opcode:#x}")
        self._m_frames += 1
        max_fragments = limits.max_fragments
        if max_fragments is not None and self._m_frames > max_fragments:
            raise PayloadTooBig(f"message of {self._m_frames} fragments, expected no more than {max_fragments}")
        # Compressed payloads are checked too: they are buffered before inflating.
        max_size = limits.max_message_size
        if max_size is not None and self._m_size + length > max_size and not self._m_compressed:
            raise PayloadTooBig(
                f"message of {self._m_size + length} bytes or more, expected no more than {max_size} bytes"
            )
        if max_size is not None and self._m_compressed and length > max_size:
            raise PayloadTooBig(f"compressed frame of {length} bytes, expected no more than {max_size} bytes")

    def _start_frame(self, opcode: int, fin: int, mask: bytes | None, length: int, *, buffered: bool) -> None:
        self._f_opcode = opcode
        self._f_fin = bool(fin)
        self._f_mask = mask
        self._f_offset = 0
        self._f_remaining = length
        self._f_parts = [] if buffered else None

    def _continue_frame(self, data: bytes, i: int) -> int:
        """Consume the payload bytes of the current frame that ``data`` holds from ``i``."""
        take = min(self._f_remaining, len(data) - i)
        mask = self._f_mask
        if mask is not None:
            offset = self._f_offset & 3
            if offset:
                mask = mask[offset:] + mask[:offset]
        self._f_offset += take
        self._f_remaining -= take
        done = self._f_remaining == 0
        target = self._f_payload
        if target is not None:
            target.write(data, i, i + take, mask)
            if done:
                self._f_payload = None
                self._message_chunk(target.take(), True)
            return i + take
        chunk = data[i : i + take]
        if mask is not None:
            chunk = apply_mask(chunk, mask)
        parts = self._f_parts
        if parts is None:
            self._message_chunk(chunk, done and self._f_fin)
        else:
            parts.append(chunk)
            if done:
                self._f_parts = None
                payload = b"".join(parts)
                if self._f_opcode & 0x08:
                    self._control_frame(self._f_opcode, payload)
                else:
                    self._message_chunk(payload, self._f_fin)
        return i + take

    def _message_chunk(self, chunk: bytes, last: bool) -> None:
        """Add payload bytes to the message in progress, and emit it when ``last``."""
        if self._m_compressed:
            assert self.extension is not None
            max_size = self.limits.max_message_size
            room = None if max_size is None else max_size - self._m_size
            chunk = self.extension.decode(chunk, fin=last, max_size=room)
        self._m_size += len(chunk)
        decoder = self._m_decoder
        if decoder is not None:
            try:
                text = decoder.decode(chunk, last)
            except UnicodeDecodeError as exc:
                raise InvalidPayload("invalid UTF-8 in text message") from exc
            if not last:
                # Python's decoder fails at once on any invalid byte but one: it holds ED A0-BF,
                # the start of a UTF-16 surrogate, until the next byte (RFC 6455 section 8.1).
                pending = decoder.getstate()[0]
                if len(pending) > 1 and pending[0] == 0xED and pending[1] >= 0xA0:
                    raise InvalidPayload("invalid UTF-8 in text message")
            text_parts: list[str] = self._m_parts  # type: ignore[assignment]
            if text:
                text_parts.append(text)
            if last:
                self._event(text_parts[0] if len(text_parts) == 1 else "".join(text_parts))
        else:
            byte_parts: list[bytes] = self._m_parts  # type: ignore[assignment]
            if chunk:
                byte_parts.append(chunk)
            if last:
                self._event(byte_parts[0] if len(byte_parts) == 1 else b"".join(byte_parts))
        if last:
            self._m_opcode = 0
            self._m_parts = None
            self._m_decoder = None

    def _control_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._event(Ping(payload))
            if self.state is OPEN:
                self._queue_frame(OP_PONG, payload)
        elif opcode == OP_PONG:
            self._event(Pong(payload))
        else:
            code, reason = parse_close(payload)
            close = Close(code, reason)
            self.close_rcvd = close
            if self.state is OPEN:
                # Echo the status code (RFC 6455 section 5.5.1).
                self._queue_frame(OP_CLOSE, payload[:2])
                self.close_sent = Close(code, "")
                self.close_rcvd_then_sent = True
            else:
                self.close_rcvd_then_sent = False
            self.state = next_state(self.state, Action.RECEIVE_CLOSE)
            self._event(close)
            # The server closes TCP first (RFC 6455 section 7.1.1); anything after a close
            # frame is ignored (section 5.5.1).
            if self.side is SERVER and not self.eof_sent:
                self.send_eof()
            self._discard = True


def _truncate_reason(reason: str) -> str:
    """Cut ``reason`` to the 123 bytes a close frame can hold, on a character boundary."""
    data = reason.encode()
    if len(data) <= 123:
        return reason
    return data[:123].decode(errors="ignore")
