"""The IoT demo: the thermostat rule, then devices, server and page together in Chromium.

The page sends a device a new target; the device reports it, its readings now cross the
band, and the rule in the server switches its heater. A device frozen (SIGSTOP) while the
server drops its connection misses a command, and gets it on reconnecting. The devices are
gone once the server stops, and when it is killed.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from tests.support.browser import Screenshot
from tests.support.config import API_KEY
from tests.support.http import http
from tests.support.serve import ServeProcess, StartDemo
from tests.support.timing import MS, wait_until

from .app import BAND, Rule, comparison, thermostat

DEGREES = re.compile(r"^\d+\.\d °C$")


def test_the_rule_has_hysteresis() -> None:
    target = 20.0
    assert thermostat(target - BAND - 0.1, target, heater=False) is True
    assert thermostat(target - BAND + 0.1, target, heater=False) is None  # in the band: as it is
    assert thermostat(target + BAND - 0.1, target, heater=True) is None
    assert thermostat(target + BAND + 0.1, target, heater=True) is False
    assert thermostat(target - 5, target, heater=True) is None  # already on
    assert thermostat(target + 5, target, heater=False) is None  # already off


class FakeNode:
    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []

    async def publish(self, channel: str, data: Any) -> None:
        self.published.append((channel, data))


async def test_the_rule_commands_once_per_crossing() -> None:
    node = FakeNode()
    fake: Any = node
    rule = Rule(fake)
    cold = {"temperature": 15.0, "target": 20.0, "heater": False}
    # The heater isn't on in the next readings yet: the command isn't sent again.
    for _ in range(3):
        await rule.on_reading("device-1", cold)
    assert [(channel, data["heater"]) for channel, data in node.published] == [("iot:device-1.commands", True)]
    await rule.on_reading("device-1", {**cold, "heater": True})
    await rule.on_reading("device-1", {"temperature": 20.2, "target": 20.0, "heater": True})
    assert len(node.published) == 1
    await rule.on_reading("device-1", {"temperature": 20.6, "target": 20.0, "heater": True})
    assert [data["heater"] for _, data in node.published] == [True, False]
    # A device that disconnected before obeying is asked again.
    rule.forget("device-1")
    await rule.on_reading("device-1", {"temperature": 20.7, "target": 20.0, "heater": True})
    assert [data["heater"] for _, data in node.published] == [True, False, False]


@pytest.mark.parametrize(
    ("value", "sign", "bound", "text"),
    [
        (15.0, "<", 19.5, "15.0 °C < 19.5 °C"),
        # To one decimal these read "16.5 °C < 16.5 °C" and "17.5 °C > 17.5 °C".
        (16.46, "<", 16.5, "16.46 °C < 16.50 °C"),
        (17.54, ">", 17.5, "17.54 °C > 17.50 °C"),
        (16.4999, "<", 16.5, "16.4999 °C < 16.5000 °C"),
        (16.5 - 1e-9, "<", 16.5, f"{16.5 - 1e-9!r} °C < 16.5 °C"),
    ],
)
def test_the_rule_says_what_it_compared_so_that_it_reads_true(value: float, sign: str, bound: float, text: str) -> None:
    assert comparison(value, sign, bound) == text


async def test_the_rule_gives_its_reason_to_the_precision_that_tells() -> None:
    node = FakeNode()
    fake: Any = node
    await Rule(fake).on_reading("device-2", {"temperature": 16.46, "target": 17.0, "heater": False})
    [(_, command)] = node.published
    assert command["reason"] == "16.46 °C < 16.50 °C"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: exited processes that no one has reaped yet don't count."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def device_pids(server: ServeProcess) -> dict[str, int]:
    """The pids of the devices, once the demo has started them all (just after it listens)."""
    async with asyncio.timeout(5000 * MS):
        while True:
            answer = await http("GET", server.url + "/iot/devices")
            pids = {device["id"]: device["pid"] for device in answer.json()["devices"]}
            if all(pids.values()):
                break
            await asyncio.sleep(20 * MS)
    assert all(alive(pid) for pid in pids.values()), pids
    return pids


async def set_target(page: Page, device: str, target: float) -> None:
    card = page.locator(f'.device[data-device="{device}"]')
    await card.locator(".target-input").fill(str(target))
    await card.locator(".set button").click()


async def test_iot(start_demo: StartDemo, browser: Browser, screenshot: Screenshot) -> None:
    server = await start_demo("iot")
    pids = await device_pids(server)
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(server.url + "/iot/")
    await expect(page.locator(".device")).to_have_count(3)
    for device in pids:
        card = page.locator(f'.device[data-device="{device}"]')
        await expect(card).to_have_attribute("data-online", "true")
        await expect(card.locator(".temperature")).to_have_text(DEGREES)

    # The page sets a target below the greenhouse's temperature: the device reports it, and
    # the rule switches the heater off; then above anything the heater can reach: on again.
    greenhouse = page.locator('.device[data-device="device-1"]')
    log = page.locator('#log li[data-device="device-1"]')
    await set_target(page, "device-1", 5)
    await expect(greenhouse.locator(".target")).to_have_text("5.0 °C")
    await expect(greenhouse.locator(".heater")).to_have_attribute("data-on", "false")
    await expect(log.first).to_contain_text("heater off, by the rule")
    await set_target(page, "device-1", 30)
    await expect(greenhouse.locator(".target")).to_have_text("30.0 °C")
    await expect(greenhouse.locator(".heater")).to_have_attribute("data-on", "true")
    await expect(log.first).to_contain_text("heater on, by the rule")
    await expect(log.filter(has_text="target 30.0 °C, by operator")).to_have_count(1)

    # The workshop freezes, and the server drops its connection: it can't reconnect yet.
    workshop = page.locator('.device[data-device="device-2"]')
    await expect(workshop.locator(".target")).to_have_text("17.0 °C")
    os.kill(pids["device-2"], signal.SIGSTOP)
    try:
        answer = await http(
            "POST",
            server.url + "/api/disconnect",
            {"user": "device-2", "disconnect": {"code": 3011, "reason": "force reconnect"}},
            headers={"X-API-Key": API_KEY},
        )
        assert answer.status == 200, answer.text
        await expect(workshop).to_have_attribute("data-online", "false")
        await set_target(page, "device-2", 25)
        await expect(page.locator('#log li[data-device="device-2"]').first).to_contain_text("target 25.0 °C")
        await expect(workshop.locator(".target")).to_have_text("17.0 °C")
    finally:
        os.kill(pids["device-2"], signal.SIGCONT)
    # Back: it recovers the command it missed, reports the new target, and the rule follows.
    await expect(workshop).to_have_attribute("data-online", "true")
    await expect(workshop.locator(".target")).to_have_text("25.0 °C")
    await wait_until(
        lambda: "device-2: resubscribed to its commands, recovered: True" in server.log,
        timeout=5000 * MS,
        what="device-2 to say it recovered",
    )
    # Left alone, the cellar warms up past its band, and the rule switches its heater off.
    cellar = page.locator('#log li[data-device="device-3"]')
    await expect(cellar.first).to_contain_text("heater off, by the rule", timeout=30_000 * MS * 1000)
    heater = page.locator('.device[data-device="device-3"] .heater')
    await expect(heater).to_have_attribute("data-on", "false")
    await screenshot(page, "iot")
    assert not errors, errors

    # Ctrl-C: the server stops its devices, then itself.
    assert await server.stop(signal.SIGINT) == 0, server.log
    assert not [pid for pid in pids.values() if alive(pid)]


async def test_devices_exit_when_the_server_is_killed(start_demo: StartDemo) -> None:
    server = await start_demo("iot")
    pids = await device_pids(server)
    server.kill()  # SIGKILL: no shutdown, no chance to stop the devices
    await wait_until(
        lambda: not any(alive(pid) for pid in pids.values()), timeout=10_000 * MS, what="the devices to exit"
    )
