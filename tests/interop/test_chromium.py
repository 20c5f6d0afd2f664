"""Interop with Chromium's native WebSocket, driven by Playwright.

Pages come over http:// from the wavecast server under test, through ``process_request``:
Chromium refuses ws:// to 127.0.0.1 from about:blank and file:// pages. The browser is
Debian's Chromium, launched once for the module; ``playwright install`` is never needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from wavecast import CloseCode, Request, Response, demo
from wavecast.asyncio import Server, ServerConnection, http_response

from ..support.browser import PLAYWRIGHT_TIMEOUT, launch_chromium
from ..support.servers import Closes, close_server, serve_locally
from ..support.timing import MS, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

TIMEOUT = PLAYWRIGHT_TIMEOUT

TEST_PAGE = b"<!DOCTYPE html><html><head><meta charset=utf-8><title>wavecast interop</title></head><body></body></html>"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as browser:
        yield browser


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    try:
        yield page
    finally:
        await context.close()


def _serve_test_page(connection: ServerConnection, request: Request) -> Response | None:
    if "websocket" in (request.headers.get("Upgrade") or "").lower():
        return None
    return http_response(200, TEST_PAGE, content_type="text/html; charset=utf-8")


@contextlib.asynccontextmanager
async def page_server(handler: Callable[[ServerConnection], Awaitable[None]], **kwargs: Any) -> AsyncIterator[Server]:
    """Serve the test page and WebSocket connections on 127.0.0.1."""
    kwargs.setdefault("process_request", _serve_test_page)
    server = await serve_locally(handler, **kwargs)
    try:
        yield server
    finally:
        await close_server(server)


# JavaScript run in the page: open a WebSocket and wait for the outcome.
OPEN = """
(url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  window.ws = ws;
  window.wsClosed = new Promise((done) => {
    ws.onclose = (event) => done({code: event.code, reason: event.reason, wasClean: event.wasClean});
  });
  ws.onopen = () => resolve({protocol: ws.protocol, extensions: ws.extensions});
  ws.onerror = () => reject(new Error("WebSocket error"));
})
"""

ECHO = """
async () => {
  const ws = window.ws;
  const next = () => new Promise((resolve) => { ws.onmessage = (event) => resolve(event.data); });
  const results = {};
  ws.send("hello from chromium ✓");
  results.text = await next();
  ws.send(new Uint8Array([0, 1, 128, 254, 255]).buffer);
  results.binary = Array.from(new Uint8Array(await next()));
  const big = "0123456789abcdef".repeat(16384);  // 256 KiB
  ws.send(big);
  results.bigTextOk = (await next()) === big;
  const bytes = new Uint8Array(300000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
  ws.send(bytes.buffer);
  const back = new Uint8Array(await next());
  results.bigBinaryOk = back.length === bytes.length && back.every((value, i) => value === bytes[i]);
  return results;
}
"""


async def test_chromium_echo_text_and_binary(page: Page) -> None:
    closes = Closes()
    async with page_server(closes) as server:
        await page.goto(f"http://127.0.0.1:{server.port}/")
        opened = await page.evaluate(OPEN, f"ws://127.0.0.1:{server.port}/echo")
        # Chromium offers permessage-deflate, and wavecast accepts it by default.
        assert "permessage-deflate" in opened["extensions"]
        results = await page.evaluate(ECHO)
        assert results == {
            "text": "hello from chromium ✓",
            "binary": [0, 1, 128, 254, 255],
            "bigTextOk": True,
            "bigBinaryOk": True,
        }
        await page.evaluate("() => window.ws.close()")
        closed = await page.evaluate("() => window.wsClosed")
        # A close without a code arrives as 1005, which ends iteration quietly.
        assert closed["wasClean"] is True
        # (server.connections also holds the page's kept-alive HTTP connection.)
        async with asyncio.timeout(2000 * MS):
            await closes.connections[0].wait_closed()
        assert closes.errors == []
        assert closes.connections[0].close_code == CloseCode.NO_STATUS_RCVD


async def test_chromium_closes_with_4000_and_a_reason(page: Page) -> None:
    closes = Closes()
    async with page_server(closes) as server:
        await page.goto(f"http://127.0.0.1:{server.port}/")
        await page.evaluate(OPEN, f"ws://127.0.0.1:{server.port}/")
        await page.evaluate("() => window.ws.close(4000, 'the page says bye')")
        closed = await page.evaluate("() => window.wsClosed")
        assert (closed["code"], closed["wasClean"]) == (4000, True)
        await wait_until(lambda: bool(closes.errors), what="the handler")
        assert (closes.errors[0].code, closes.errors[0].reason) == (4000, "the page says bye")


async def test_server_close_reaches_onclose_with_1001(page: Page) -> None:
    closes = Closes()
    async with page_server(closes) as server:
        await page.goto(f"http://127.0.0.1:{server.port}/")
        await page.evaluate(OPEN, f"ws://127.0.0.1:{server.port}/")
        await wait_until(lambda: bool(closes.connections), what="the connection")
        server.close(reason="maintenance")
        closed = await page.evaluate("() => window.wsClosed")
        assert closed == {"code": 1001, "reason": "maintenance", "wasClean": True}
        await server.wait_closed()


async def test_handler_failure_reaches_onclose_with_1011(page: Page) -> None:
    async def fail(connection: ServerConnection) -> None:
        await connection.recv()
        raise RuntimeError("the handler failed")

    async with page_server(fail) as server:
        await page.goto(f"http://127.0.0.1:{server.port}/")
        await page.evaluate(OPEN, f"ws://127.0.0.1:{server.port}/")
        await page.evaluate("() => window.ws.send('go')")
        closed = await page.evaluate("() => window.wsClosed")
        assert closed["code"] == CloseCode.INTERNAL_ERROR


async def test_cross_origin_page_is_rejected(page: Page) -> None:
    closes = Closes()
    async with page_server(closes) as page_host, page_server(closes) as other:
        await page.goto(f"http://127.0.0.1:{page_host.port}/")
        # The page's origin names another port than the server's Host: 403, which the
        # browser reports as an error and a 1006 close.
        with pytest.raises(Exception, match="WebSocket error"):
            await page.evaluate(OPEN, f"ws://127.0.0.1:{other.port}/")
        closed = await page.evaluate("() => window.wsClosed")
        assert (closed["code"], closed["wasClean"]) == (1006, False)
    assert closes.connections == []


async def test_demo_page_echoes_what_is_typed(page: Page) -> None:
    async with page_server(demo.echo, process_request=demo.process_request) as server:
        await page.goto(f"http://127.0.0.1:{server.port}/")
        await expect(page.locator("#status")).to_have_text("connected", timeout=TIMEOUT)
        await page.fill("#message", "hello from playwright")
        await page.press("#message", "Enter")
        await expect(page.locator("#log")).to_contain_text("< hello from playwright", timeout=TIMEOUT)
        await expect(page.locator("#log")).to_contain_text("> hello from playwright", timeout=TIMEOUT)
        await expect(page.locator("#message")).to_have_value("")
        # The health check and the 404 page answer plain HTTP on the same port.
        health = await page.request.get(f"http://127.0.0.1:{server.port}/health")
        assert (health.status, await health.text()) == (200, "OK\n")
        missing = await page.request.get(f"http://127.0.0.1:{server.port}/missing")
        assert missing.status == 404
