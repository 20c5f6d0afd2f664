"""The admin page at /admin: HTTP basic auth, its JSON API, and the page itself in Chromium."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from ..browser import PLAYWRIGHT_TIMEOUT
from ..utils import wait_until
from .conftest import (
    ADMIN_PASSWORD,
    MakeClient,
    StartWavecast,
    basic_auth,
    make_token,
    subscribe,
)

AUTH = basic_auth(ADMIN_PASSWORD)


async def test_admin_is_404_when_disabled(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(admin={"enabled": False})
    for path in ("/admin", "/admin/", "/admin/api/info"):
        answer = await running.get(path, headers=AUTH)
        assert answer.status == 404, path
    assert (await running.post("/admin/api/publish", {"channel": "chat:x", "data": {}}, headers=AUTH)).status == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_auth("wrong"),
        basic_auth(ADMIN_PASSWORD, user="root"),
        basic_auth(ADMIN_PASSWORD + "x"),
        basic_auth(ADMIN_PASSWORD[:-1]),
        {"Authorization": f"Bearer {ADMIN_PASSWORD}"},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
        {"Authorization": "Basic"},
    ],
    ids=["none", "wrong", "user", "longer", "shorter", "bearer", "garbage", "not-utf8", "empty"],
)
async def test_admin_needs_the_password(start_wavecast: StartWavecast, headers: dict[str, str]) -> None:
    running = await start_wavecast()
    for path in ("/admin", "/admin/api/info"):
        answer = await running.get(path, headers=headers)
        assert answer.status == 401, path
        assert answer.headers["WWW-Authenticate"].startswith('Basic realm="wavecast admin"')
        assert b"wavecast" not in answer.body
    answer = await running.post("/admin/api/publish", {"channel": "chat:x", "data": {}}, headers=headers)
    assert answer.status == 401
    assert running.node.stats.publications == 0


async def test_admin_page(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    for path in ("/admin", "/admin/"):
        answer = await running.get(path, headers=AUTH)
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"<title>wavecast admin</title>" in answer.body
    assert (await running.get("/admin/nope", headers=AUTH)).status == 404
    # A user-name scheme in any case, as RFC 7617 allows.
    lower = {"Authorization": AUTH["Authorization"].replace("Basic", "basic")}
    assert (await running.get("/admin", headers=lower)).status == 200


async def test_admin_info_counts(start_wavecast: StartWavecast, make_client: MakeClient) -> None:
    running = await start_wavecast()
    info = (await running.get("/admin/api/info", headers=AUTH)).json()
    (node,) = info["nodes"]
    assert (node["num_clients"], node["num_channels"], info["channels"]) == (0, 0, {})
    assert node["uid"] == running.node.uid
    assert info["version"]

    alice, _ = make_client(running.ws_url, token=make_token("alice"))
    bob, _ = make_client(running.ws_url, token=make_token("bob"))
    await alice.connect()
    await bob.connect()
    await subscribe(alice, "chat:lobby")
    await subscribe(bob, "chat:lobby")
    await subscribe(bob, "news:today")

    info = (await running.get("/admin/api/info", headers=AUTH)).json()
    (node,) = info["nodes"]
    assert node["num_clients"] == 2
    assert node["num_users"] == 2
    assert node["num_channels"] == 2
    assert node["num_subscriptions"] == 3
    assert info["channels"] == {"chat:lobby": 2, "news:today": 1}

    await alice.disconnect()
    await wait_until(lambda: running.node.hub.num_sessions == 1, what="alice gone")
    info = (await running.get("/admin/api/info", headers=AUTH)).json()
    assert info["nodes"][0]["num_clients"] == 1
    assert info["channels"] == {"chat:lobby": 1, "news:today": 1}


async def test_admin_publish(start_wavecast: StartWavecast, make_client: MakeClient) -> None:
    running = await start_wavecast()
    client, _ = make_client(running.ws_url, token=make_token("alice"))
    await client.connect()
    lobby = await subscribe(client, "chat:lobby")
    news = await subscribe(client, "news:today")

    answer = await running.post("/admin/api/publish", {"channel": "chat:lobby", "data": {"text": "hi"}}, headers=AUTH)
    assert answer.status == 200
    assert answer.json()["offset"] == 1
    await lobby.wait("publication")
    assert lobby.data == [{"text": "hi"}]

    # Without history: no position.
    answer = await running.post("/admin/api/publish", {"channel": "news:today", "data": "plain"}, headers=AUTH)
    assert (answer.status, answer.json()) == (200, {})
    await news.wait("publication")
    assert news.data == ["plain"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{", 'expected {"channel": ..., "data": ...}'),
        (b'{"channel": "chat:x"}', 'expected {"channel": ..., "data": ...}'),
        (b"[1]", 'expected {"channel": ..., "data": ...}'),
        (b'{"channel": "nope:x", "data": {}}', "unknown channel 'nope:x'"),
        (b'{"channel": 1, "data": {}}', "unknown channel 1"),
    ],
)
async def test_admin_publish_errors(start_wavecast: StartWavecast, body: bytes, error: str) -> None:
    running = await start_wavecast()
    answer = await running.post("/admin/api/publish", body, headers=AUTH)
    assert (answer.status, answer.json()) == (400, {"error": error})
    # Only POST publishes.
    assert (await running.get("/admin/api/publish", headers=AUTH)).status == 404


@pytest.mark.interop
async def test_admin_page_in_chromium(
    start_wavecast: StartWavecast, make_client: MakeClient, browser: Browser, tmp_path: Path
) -> None:
    running = await start_wavecast()
    alice, _ = make_client(running.ws_url, token=make_token("alice"))
    await alice.connect()
    lobby = await subscribe(alice, "chat:lobby")

    context = await browser.new_context(http_credentials={"username": "admin", "password": ADMIN_PASSWORD})
    try:
        page = await context.new_page()
        page.set_default_timeout(PLAYWRIGHT_TIMEOUT)
        await page.goto(running.url + "/admin")
        try:
            await expect(page.locator("#num-clients")).to_have_text("1")
            await expect(page.locator("#num-channels")).to_have_text("1")
            await expect(page.locator("#num-subscriptions")).to_have_text("1")
            await expect(page.locator("#channels tr")).to_have_text(["chat:lobby1"])
            await expect(page.locator("#nodes td").nth(1)).to_have_text(running.node.uid)

            # Live: the page polls, and sees a second client.
            bob, _ = make_client(running.ws_url, token=make_token("bob"))
            await bob.connect()
            await subscribe(bob, "news:today")
            await expect(page.locator("#num-clients")).to_have_text("2")
            await expect(page.locator("#num-channels")).to_have_text("2")

            # Publishing through the form reaches the subscriber.
            await page.fill("#channel", "chat:lobby")
            await page.fill("#data", '{"name": "admin", "text": "hello from the admin page"}')
            await page.click("#publish button")
            await expect(page.locator("#result")).to_have_text("published at offset 1")
            await lobby.wait("publication")
            assert lobby.data == [{"name": "admin", "text": "hello from the admin page"}]

            # Mistakes are shown, not sent.
            await page.fill("#data", "{not json")
            await page.click("#publish button")
            await expect(page.locator("#result")).to_contain_text("invalid JSON")
            await page.fill("#channel", "nope:x")
            await page.fill("#data", "{}")
            await page.click("#publish button")
            await expect(page.locator("#result")).to_have_text("unknown channel 'nope:x'")
            assert running.node.stats.publications == 1
        finally:
            await page.screenshot(path=str(tmp_path / "admin.png"))
    finally:
        await context.close()
