"""The admin page at /admin: HTTP basic auth, its JSON API, and the page itself in Chromium."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, expect

from ..support.browser import PLAYWRIGHT_TIMEOUT, PageProblems, assert_icon_served
from ..support.config import ADMIN_PASSWORD
from ..support.http import basic_auth, http_from
from ..support.sdk import Clients, subscribe
from ..support.servers import StartWavecast
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

AUTH = basic_auth(ADMIN_PASSWORD)
WRONG = basic_auth("wrong")
JSON = {"Content-Type": "application/json"}


PUBLISH: dict[str, Any] = {"channel": "chat:lobby", "data": {"text": "forged"}}


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


async def test_admin_info_counts(start_wavecast: StartWavecast, make_client: Clients) -> None:
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


async def test_admin_publish(start_wavecast: StartWavecast, make_client: Clients) -> None:
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
    answer = await running.post("/admin/api/publish", body, headers={**AUTH, **JSON})
    assert (answer.status, answer.json()) == (400, {"error": error})
    # Only POST publishes.
    assert (await running.get("/admin/api/publish", headers=AUTH)).status == 404


# --- cross-site requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
async def test_admin_publish_needs_json(start_wavecast: StartWavecast, content_type: str) -> None:
    # A hostile page's form posts text/plain (or a form encoding) without a preflight, and the
    # browser adds the admin's cached login: that JSON-looking body published.
    running = await start_wavecast()
    body = b'{"channel": "chat:lobby", "data": {"text": "forged"}}'
    headers = {**AUTH, "Content-Type": content_type}
    answer = await running.post("/admin/api/publish", body, headers=headers)
    assert answer.status == 415
    assert answer.json() == {"error": f"expected Content-Type application/json, got {content_type.split(';')[0]!r}"}
    assert running.node.stats.publications == 0
    # JSON with parameters, in any case, is JSON.
    headers = {**AUTH, "Content-Type": "Application/JSON; charset=utf-8"}
    assert (await running.post("/admin/api/publish", body, headers=headers)).status == 200


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1:1", "http://localhost", "https://app.example.com.evil"]
)
async def test_admin_refuses_other_origins(start_wavecast: StartWavecast, origin: str) -> None:
    # "*" and "null" let WebSocket clients in; they don't let other pages act as the admin.
    running = await start_wavecast(server={"allowed_origins": ["https://app.example.com", "*", "null"]})
    answer = await running.post("/admin/api/publish", PUBLISH, headers={**AUTH, "Origin": origin})
    assert answer.status == 403
    assert answer.json() == {"error": f"cross-origin request refused: origin {origin!r} isn't allowed"}
    assert running.node.stats.publications == 0
    # Reading stays open to the page's GETs, which change nothing.
    assert (await running.get("/admin/api/info", headers={**AUTH, "Origin": origin})).status == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_admin_refuses_cross_site_requests_without_origin(start_wavecast: StartWavecast, site: str) -> None:
    running = await start_wavecast()
    answer = await running.post("/admin/api/publish", PUBLISH, headers={**AUTH, "Sec-Fetch-Site": site})
    assert (answer.status, answer.json()) == (403, {"error": "cross-site request refused"})
    assert running.node.stats.publications == 0


async def test_admin_accepts_its_own_origin(start_wavecast: StartWavecast, make_client: Clients) -> None:
    running = await start_wavecast(server={"allowed_origins": ["https://app.example.com"]})
    client, _ = make_client(running.ws_url, token=make_token("alice"))
    await client.connect()
    lobby = await subscribe(client, "chat:lobby")
    accepted = [
        # What the admin page's fetch sends.
        {"Origin": running.url, "Sec-Fetch-Site": "same-origin"},
        # A listed origin, in any case.
        {"Origin": "HTTPS://app.example.com"},
        # curl and scripts send no Origin.
        {},
        {"Sec-Fetch-Site": "none"},
    ]
    for n, headers in enumerate(accepted):
        publish = {"channel": "chat:lobby", "data": {"n": n}}
        answer = await running.post("/admin/api/publish", publish, headers={**AUTH, **headers})
        assert answer.status == 200, headers
    await wait_until(lambda: len(lobby.data) == len(accepted), what="every publication")
    assert lobby.data == [{"n": n} for n in range(len(accepted))]


# --- logins and headers -----------------------------------------------------------------------------


async def test_wrong_passwords_are_throttled_and_logged(
    start_wavecast: StartWavecast, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wavecast.server")
    running = await start_wavecast()
    statuses = [(await running.get("/admin/api/info", headers=WRONG)).status for _ in range(15)]
    # 10 at once by default; the 11th is one too many, and the next ones aren't even checked.
    assert statuses == [401] * 10 + [429] * 5
    # Not even the right password gets in meanwhile.
    for path in ("/admin", "/admin/api/info"):
        answer = await running.get(path, headers=AUTH)
        assert answer.status == 429, path
        assert 1 <= int(answer.headers["Retry-After"]) <= 5
    answer = await running.post("/admin/api/publish", PUBLISH, headers=AUTH)
    assert answer.status == 429
    assert running.node.stats.publications == 0

    logged = [(record.name, record.levelno, record.getMessage()) for record in caplog.records]
    failed = ("wavecast.server", logging.WARNING, "admin login failed from 127.0.0.1")
    assert logged.count(failed) == 11
    assert ("wavecast.server", logging.WARNING, "admin logins from 127.0.0.1 throttled for 5 s") in logged

    # Another address isn't throttled: neither the right password nor a wrong one.
    assert (await http_from("127.0.0.2", "GET", running.url + "/admin/api/info", AUTH)).status == 200
    assert (await http_from("127.0.0.2", "GET", running.url + "/admin/api/info", WRONG)).status == 401
    assert ("wavecast.server", logging.WARNING, "admin login failed from 127.0.0.2") in [
        (record.name, record.levelno, record.getMessage()) for record in caplog.records
    ]


async def test_throttled_address_may_log_in_again(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(admin={"login_failure_rate": 20.0, "login_failure_burst": 2})
    statuses = [(await running.get("/admin/api/info", headers=WRONG)).status for _ in range(3)]
    assert statuses == [401, 401, 429]
    # A failure is allowed again after 1 / login_failure_rate: 50 ms here.
    await asyncio.sleep(60 * MS)
    assert (await running.get("/admin/api/info", headers=AUTH)).status == 200
    # Without a header, a browser asks to be challenged: no failure, however often.
    for _ in range(5):
        assert (await running.get("/admin", headers={})).status == 401


async def test_no_throttling_when_off(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(admin={"login_failure_rate": False, "login_failure_burst": 1})
    statuses = [(await running.get("/admin/api/info", headers=WRONG)).status for _ in range(5)]
    assert statuses == [401] * 5
    assert (await running.get("/admin/api/info", headers=AUTH)).status == 200


async def test_admin_responses_forbid_framing_and_sniffing(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    answers = [
        await running.get("/admin", headers=AUTH),
        await running.get("/admin/api/info", headers=AUTH),
        await running.get("/admin/admin.js", headers=AUTH),
        await running.get("/admin/nope", headers=AUTH),
        await running.get("/admin", headers=WRONG),
        await running.post("/admin/api/publish", PUBLISH, headers=AUTH),
        await running.post("/admin/api/publish", PUBLISH, headers={**AUTH, "Origin": "https://evil.example"}),
    ]
    for answer in answers:
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        policy = [directive.strip() for directive in answer.headers["Content-Security-Policy"].split(";")]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
    # Other routes are left alone.
    assert "X-Frame-Options" not in (await running.get("/health")).headers


async def test_admin_page_has_no_inline_code(start_wavecast: StartWavecast) -> None:
    # The policy allows the page's own files only: its script and style are files.
    running = await start_wavecast()
    page = (await running.get("/admin", headers=AUTH)).body
    assert b"<script>" not in page and b"<style>" not in page and b" style=" not in page
    assert b'<script src="/admin/admin.js"></script>' in page
    script = await running.get("/admin/admin.js", headers=AUTH)
    assert script.status == 200
    assert script.headers["Content-Type"] in ("text/javascript; charset=utf-8", "application/javascript; charset=utf-8")
    assert b'"Content-Type": "application/json"' in script.body
    css = await running.get("/admin/admin.css", headers=AUTH)
    assert (css.status, css.headers["Content-Type"]) == (200, "text/css; charset=utf-8")
    # Behind the login, like the page.
    assert (await running.get("/admin/admin.js")).status == 401


@pytest.mark.interop
async def test_admin_page_in_chromium(
    start_wavecast: StartWavecast, make_client: Clients, browser: Browser, tmp_path: Path
) -> None:
    running = await start_wavecast()
    alice, _ = make_client(running.ws_url, token=make_token("alice"))
    await alice.connect()
    lobby = await subscribe(alice, "chat:lobby")

    context = await browser.new_context(http_credentials={"username": "admin", "password": ADMIN_PASSWORD})
    try:
        page = await context.new_page()
        page.set_default_timeout(PLAYWRIGHT_TIMEOUT)
        console: list[ConsoleMessage] = []
        page.on("console", lambda message: console.append(message))
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
            # The page runs under its Content-Security-Policy, and its publish passes the
            # cross-site checks: the fetch sends JSON from the page's origin.
            violations = [message.text for message in console if "Content Security Policy" in message.text]
            assert violations == []
        finally:
            await page.screenshot(path=str(tmp_path / "admin.png"))
    finally:
        await context.close()


@pytest.mark.interop
async def test_admin_page_loads_cleanly_in_chromium(start_wavecast: StartWavecast, browser: Browser) -> None:
    # /favicon.ico was a 404 on the admin page, logged on every load.
    running = await start_wavecast(demo={"enabled": False})
    context = await browser.new_context(http_credentials={"username": "admin", "password": ADMIN_PASSWORD})
    try:
        page = await context.new_page()
        page.set_default_timeout(PLAYWRIGHT_TIMEOUT)
        watch = PageProblems(page)
        await page.goto(running.url + "/admin")
        await expect(page.locator("#num-clients")).to_have_text("0")
        await assert_icon_served(page)
        await page.close()
        assert watch.problems == []
    finally:
        await context.close()
