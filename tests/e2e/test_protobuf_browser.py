"""centrifuge-js's protobuf browser bundle in Chromium: one page publishes a Uint8Array, another
receives the same bytes.

The bundle is the one ``make node`` vendors, served by the server under test from
``/static/vendor/centrifuge.protobuf.js``, as an application's page would load it; the pages
come from the same origin, since Chromium refuses ws:// to 127.0.0.1 from about:blank.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from ..support.browser import PLAYWRIGHT_TIMEOUT
from ..support.servers import AppServer, StartWavecast
from ..support.timing import TIMEOUT_FACTOR
from ..support.tokens import make_token
from ..support.tools import require

pytestmark = pytest.mark.interop

VENDOR = Path(__file__).parents[2] / "src" / "wavecast" / "static" / "vendor" / "centrifuge.protobuf.js"

# Connect with the protobuf bundle, subscribe, and keep what arrives as arrays of bytes.
OPEN = """
async ({url, token, channel}) => {
  const client = new Centrifuge(url, {token, minReconnectDelay: 50, maxReconnectDelay: 200});
  window.received = [];
  const sub = client.newSubscription(channel);
  sub.on("publication", (ctx) => {
    window.received.push({bytes: Array.from(ctx.data), isUint8Array: ctx.data instanceof Uint8Array});
  });
  window.client = client;
  window.sub = sub;
  client.connect();
  sub.subscribe();
  await sub.ready(5000);
}
"""

PUBLISH = """
async (bytes) => {
  await window.sub.publish(new Uint8Array(bytes));
}
"""


async def open_page(browser: Browser, running: AppServer, user: str) -> Page:
    page = await (await browser.new_context()).new_page()
    page.set_default_timeout(PLAYWRIGHT_TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(running.url + "/health")
    await page.add_script_tag(url="/static/vendor/centrifuge.protobuf.js")
    await page.evaluate(OPEN, {"url": running.ws_url, "token": make_token(user), "channel": "chat:doc"})
    assert not errors, errors
    return page


@pytest.mark.timeout(30 * TIMEOUT_FACTOR)
async def test_a_uint8array_from_one_page_reaches_another(browser: Browser, start_wavecast: StartWavecast) -> None:
    require(VENDOR.is_file(), f"{VENDOR.name} isn't vendored: run `make node`")
    running = await start_wavecast(demo={"enabled": True})
    writer = await open_page(browser, running, "writer")
    reader = await open_page(browser, running, "reader")
    # The bundle offered the subprotocol, and Chromium took the answer.
    subprotocols = [connection.subprotocol for connection in running.server.connections]
    assert subprotocols.count("centrifuge-protobuf") == 2  # the others serve HTTP
    assert {session.codec.name for session in running.node.hub.sessions()} == {"protobuf"}

    # A Yjs update is binary like this: not JSON, not UTF-8.
    update = [0, 1, 0x9F, 0xC3, 0, 0xFF, *range(256)]
    await writer.evaluate(PUBLISH, update)
    await reader.wait_for_function("window.received.length === 1")
    assert await reader.evaluate("window.received") == [{"bytes": update, "isUint8Array": True}]
    assert await writer.evaluate("window.received") == [{"bytes": update, "isUint8Array": True}]
    history = await running.node.history("chat:doc", limit=10)
    assert [(p.data, p.binary) for p in history.publications] == [(bytes(update), True)]
    for page in (writer, reader):
        await page.context.close()
