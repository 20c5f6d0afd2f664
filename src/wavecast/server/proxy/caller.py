"""POST a proxy request to the backend over kept-alive connections, with a deadline and a
size limit on the answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...exceptions import WavecastError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpCaller", "ProxyCallError"]


class ProxyCallError(WavecastError):
    """The backend couldn't be reached, didn't answer in time, answered with a status other
    than 200 or with a body past the limit; the client gets Centrifugo's code for it."""


class HttpCaller:
    """One pool of kept-alive connections to the backends (aiohttp), opened on first use.

    Args:
        max_connections: connections open at most, to all backends together.
        max_response_size: bytes an answer may have.
    """

    def __init__(self, *, max_connections: int, max_response_size: int) -> None:
        self.max_connections = max_connections
        self.max_response_size = max_response_size
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30),
                # Centrifugo sends none of these; a backend sees only the headers configured.
                skip_auto_headers=("User-Agent",),
                auto_decompress=False,
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> bytes:
        """POST ``body`` to ``url``; return the answer's body.

        Raises:
            ProxyCallError: no answer in ``timeout`` seconds, a status other than 200, an
                answer larger than ``max_response_size``, or a connection error.
        """
        import aiohttp

        limit = self.max_response_size
        try:
            async with self._client().post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                if response.status != 200:
                    raise ProxyCallError(f"unexpected HTTP status {response.status}")
                if response.content_length is not None and response.content_length > limit:
                    raise ProxyCallError(f"answer of {response.content_length} bytes, expected at most {limit}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > limit:
                        raise ProxyCallError(f"answer of more than {limit} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except TimeoutError as exc:
            raise ProxyCallError(f"no answer in {timeout} s") from exc
        except aiohttp.ClientError as exc:
            raise ProxyCallError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the pool's connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
