"""Incremental HTTP/1.1 parsing of the opening handshake, on httptools (llhttp).

httptools does the parsing; this module enforces wavecast's limits on it, so that a peer
can't make it buffer an endless request line or header, or an unbounded number of headers.
"""

from __future__ import annotations

import re
import sys

import httptools

from ..exceptions import InvalidHandshake, LocalProtocolError
from ..speedups import load
from .events import Request, Response
from .headers import Headers
from .limits import Limits

__all__ = ["RequestParser", "ResponseParser"]

# A rejection's body is kept for error messages, up to this size.
_MAX_BODY = 65536


# The opening handshake as browsers and client libraries send it: GET, HTTP/1.1, an
# origin-form target, token header names and printable ASCII values, CRLF line ends. A head
# like this is one llhttp parses to the same request, so it takes the fast path below; any
# other (a body, Connection: close, a tab, obs-text, a bare LF, a limit reached...) goes to
# llhttp, which gives its usual answer. tests/protocol/test_http.py checks the two agree.
_SIMPLE_TARGET = re.compile(r"/[-A-Za-z0-9._~!$&'()*+,;=:@/?%]*")
_SIMPLE_NAMES = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+(?::[-!#$%&'*+.^_`|~0-9A-Za-z]+)*")
# Left to llhttp: a body to read, or a connection not kept alive (looked for anywhere in the
# head, so that a value that merely contains one of these is only slower, never wrong).
_NOT_SIMPLE = ("close", "content-length", "transfer-encoding", "proxy-connection")
_KEY = sys.intern("Sec-WebSocket-Key")


def _simple_head_python(data: bytes, max_count: int, max_line: int) -> tuple[str, list[str], int] | None:
    """Split a complete, simple request head at the start of ``data``; ``None`` if there is none.

    Returns its target, its headers as ``[name, value, ...]`` (interned as ``on_header`` does)
    and where the head ends. ``max_count`` and ``max_line`` are the limits, -1 for none: the
    whole head is no longer than one line may be, so no line can exceed the limit.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0 or not data.startswith(b"GET /"):
        return None
    if max_line >= 0 and end + 4 > max_line:
        return None
    head = data[:end].decode("latin-1")
    lower = head.lower()
    if not head.isascii() or any(word in lower for word in _NOT_SIMPLE):
        return None
    lines = head.split("\r\n")
    # Printable ASCII has no CR, LF, tab, NUL or DEL: no line ends early, no control character.
    if not "".join(lines).isprintable() or (max_count >= 0 and len(lines) - 1 > max_count):
        return None
    request_line = lines[0]
    if not request_line.endswith(" HTTP/1.1"):
        return None
    target = request_line[4:-9]
    if _SIMPLE_TARGET.fullmatch(target) is None:
        return None
    items: list[str] = []
    intern = sys.intern
    for index in range(1, len(lines)):
        name, colon, value = lines[index].partition(":")
        value = value.lstrip(" ")
        # llhttp keeps trailing spaces in a value: rare enough to leave to it.
        if not colon or value.endswith(" "):
            return None
        # Interned as on_header does: every connection has the same names and most values;
        # not the key, which no other connection shares.
        name = intern(name)
        items += (name, value if name is _KEY or len(value) > 256 else intern(value))
    # Each name a token: joined with a colon, which no token holds, they match once.
    if items and _SIMPLE_NAMES.fullmatch(":".join(items[0::2])) is None:
        return None
    return target, items, end + 4


_native = load("wavecast.protocol._speedups")
#: The C twin of :func:`_simple_head_python`, or the function itself without the extension.
_simple_head = _native.simple_head if _native is not None else _simple_head_python


def _parse_simple_request(data: bytes, max_count: int | None, max_line: int | None) -> tuple[Request, bytes] | None:
    """Parse a complete, simple request head at the start of ``data`` without llhttp.

    Returns the request and the bytes after its head, or ``None`` when the head is
    incomplete or not simple: the caller then lets llhttp parse it.
    """
    head = _simple_head(data, -1 if max_count is None else max_count, -1 if max_line is None else max_line)
    if head is None:
        return None
    target, items, end = head
    path, _, query = target.partition("?")
    request = Request(
        method="GET",
        path=sys.intern(path) if len(path) <= 256 else path,
        query=query,
        headers=Headers._from_flat(items),
        http_version="1.1",
        body=b"",
        keep_alive=True,
    )
    return request, data[end:]


class _Pipelined(Exception):
    """Raised from a callback to stop httptools at the start of a pipelined request."""


class _HeadParser:
    """What the request and response parsers share: header limits and line tracking."""

    def __init__(self, limits: Limits) -> None:
        self._max_count = limits.max_header_count
        self._max_line = limits.max_header_line
        self._headers = Headers()
        self._count = 0
        self._error: InvalidHandshake | None = None
        # Bytes since the last LF, to bound a line that never ends.
        self._line = 0
        self._head_done = False

    def _check_lines(self, data: bytes) -> None:
        """Fail as soon as an unfinished line outgrows the limit, before httptools buffers more of it.

        Called after httptools parsed ``data``: once the head is complete, what follows it
        (a body, or frames after a 101) isn't made of header lines.
        """
        if self._max_line is None or self._head_done:
            return
        last = data.rfind(b"\n")
        self._line = self._line + len(data) if last < 0 else len(data) - last - 1
        if self._line > self._max_line:
            raise InvalidHandshake(
                f"header line of {self._line} bytes or more, expected no more than {self._max_line} bytes",
                status=431,
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count += 1
        if self._max_count is not None and self._count > self._max_count:
            self._error = InvalidHandshake(f"more than {self._max_count} headers", status=431)
            return
        if self._max_line is not None and len(name) + len(value) + 2 > self._max_line:
            self._error = InvalidHandshake(
                f"header line of {len(name) + len(value) + 2} bytes, expected no more than {self._max_line} bytes",
                status=431,
            )
            return
        # Names, and short values, repeat on every connection (Host, Upgrade, User-Agent):
        # interned, each connection's request shares them instead of holding copies.
        text = value.decode("latin-1")
        self._headers.add(sys.intern(name.decode("latin-1")), sys.intern(text) if len(text) <= 256 else text)

    def on_headers_complete(self) -> None:
        self._head_done = True


class RequestParser(_HeadParser):
    """Parse one HTTP request: a handshake, or a plain request with a bounded body."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._parser: httptools.HttpRequestParser | None = None
        self._done = False

    def _start(self) -> httptools.HttpRequestParser:
        """Set up llhttp's parser and what its callbacks fill: only for requests that aren't simple."""
        limits = self._limits
        super().__init__(limits)
        self._url = b""
        self._max_body = limits.max_body_size
        self._body: list[bytes] = []
        self._body_size = 0
        self._keep_alive = False
        # The last bytes of the head so far, to find its end across packets.
        self._head_tail = b""
        self._pipelined = False
        self._parser = parser = httptools.HttpRequestParser(self)
        return parser

    def on_message_begin(self) -> None:
        if self._done:
            # httptools went on to a request pipelined after one with a body, and would merge
            # it into this one; stop it. Where that request starts is unknown, so it's dropped
            # and the connection closes after the answer.
            self._pipelined = True
            raise _Pipelined

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # httptools resets this once the message is complete: read it now.
        assert self._parser is not None
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._max_body is not None and self._body_size > self._max_body:
            self._error = InvalidHandshake(
                f"request body of {self._body_size} bytes or more, expected no more than {self._max_body} bytes",
                status=413,
            )
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._done = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        if self._max_line is not None and len(self._url) > self._max_line:
            self._error = InvalidHandshake(
                f"request target of {len(self._url)} bytes or more, expected no more than {self._max_line} bytes",
                status=414,
            )

    def feed(self, data: bytes) -> tuple[Request, bytes] | None:
        """Feed bytes; return the request and the bytes after it once it is complete.

        An upgrade request is complete with its head; another request with its body.

        Raises:
            InvalidHandshake: the request is malformed or exceeds a limit; ``status`` says
                what to answer.
        """
        parser = self._parser
        if parser is None:
            # The first bytes: llhttp's parser, and the state of its callbacks, are created
            # only when they aren't a simple request head. Most handshakes never need them.
            if self._done:
                raise LocalProtocolError("can't feed a request parser that is done")
            limits = self._limits
            result = _parse_simple_request(data, limits.max_header_count, limits.max_header_line)
            if result is not None:
                self._done = True
                return result
            parser = self._start()
        pieces = [data]
        if not self._head_done:
            # Feed the head alone when it ends inside ``data``: httptools would parse a request
            # pipelined after a bodiless one as more of this one. A head ends with an empty
            # line, and llhttp accepts no bare LF.
            window = self._head_tail + data
            end = window.find(b"\r\n\r\n")
            if end >= 0:
                end += 4 - len(self._head_tail)
                if end < len(data):
                    pieces = [data[:end], data[end:]]
            self._head_tail = window[-3:]
        consumed = 0
        try:
            for piece in pieces:
                if self._done:
                    break
                parser.feed_data(piece)
                consumed += len(piece)
        except httptools.HttpParserUpgrade as exc:
            consumed += exc.args[0]
            self._done = True
        except httptools.HttpParserError as exc:
            if self._error is not None:
                raise self._error from None
            if not self._pipelined:
                raise InvalidHandshake(f"invalid HTTP request: {exc}") from exc
            consumed = len(data)
        if self._error is not None:
            raise self._error
        self._check_lines(data)
        if not self._done:
            return None
        path, _, query = self._url.decode("latin-1").partition("?")
        # Interned as header names are: every connection has the same few.
        request = Request(
            method=sys.intern(parser.get_method().decode("latin-1")),
            path=sys.intern(path) if len(path) <= 256 else path,
            query=query,
            headers=self._headers,
            http_version=sys.intern(parser.get_http_version()),
            body=b"".join(self._body),
            keep_alive=self._keep_alive and not self._pipelined,
        )
        # httptools holds this parser's callbacks, bound to it: a reference cycle on every
        # connection, which only the cyclic GC would free. Done, it lets go of httptools, and
        # both go with their last reference.
        self._parser = None
        return request, data[consumed:]


class ResponseParser(_HeadParser):
    """Parse one handshake response from the bytes fed to it."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self._parser = httptools.HttpResponseParser(self)
        self._reason = b""
        self._body = b""

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_body(self, body: bytes) -> None:
        if len(self._body) < _MAX_BODY:
            self._body += body[: _MAX_BODY - len(self._body)]

    def feed(self, data: bytes) -> tuple[Response, bytes] | None:
        """Feed bytes; return the response and what follows it once the head is complete.

        The body of a rejection is whatever arrived with the head, up to 64 KiB.

        Raises:
            InvalidHandshake: the response is malformed or exceeds a limit.
        """
        tail = b""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            tail = data[exc.args[0] :]
        except httptools.HttpParserError as exc:
            if self._error is not None:
                raise self._error from None
            # llhttp pauses after the head of any 101, but httptools reports an upgrade only
            # when the headers ask for one; the client's checks then reject the response. An
            # error in the body of a rejection leaves the body that arrived before it.
            if not self._head_done:
                raise InvalidHandshake(f"invalid HTTP response: {exc}") from exc
        if self._error is not None:
            raise self._error
        self._check_lines(data)
        if not self._head_done:
            return None
        response = Response(
            status_code=self._parser.get_status_code(),
            reason_phrase=self._reason.decode("latin-1"),
            headers=self._headers,
            body=self._body,
        )
        del self._parser  # as RequestParser does: no cycle left for the GC
        return response, tail
