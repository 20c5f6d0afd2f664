"""A simulated thermostat: a temperature sensor, a motion sensor and a heater, on centrifuge-python.

``python -m examples.iot.device --id device-4 --config wavecast.toml`` runs one by hand
against ``make run``; the IoT demo starts three itself. The device publishes a reading to
``iot:<id>.readings`` every ``--interval`` seconds and obeys the commands published to
``iot:<id>.commands``: ``{"heater": true}`` from the server's rule, ``{"target": 24.0}``
from the page. The commands channel keeps history and the device subscribes with recovery,
so after a lost connection it gets, in order, every command published meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from centrifuge import (
    Client,
    ClientEventHandler,
    ClientState,
    ConnectedContext,
    DisconnectedContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
)

__all__ = ["Thermostat", "main"]

logger = logging.getLogger("wavecast.examples.iot.device")

#: How fast the room loses heat to the outside, per second and degree of difference.
LOSS = 0.08
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Thermostat:
    """The simulated room: the heater warms it, the outside cools it, people walk through."""

    def __init__(self, *, ambient: float, target: float) -> None:
        self.ambient = ambient
        self.target = target
        self.temperature = ambient + random.uniform(0, 1)
        self.heater = False
        self.motion = False
        # Strong enough to hold the room as far above the target as the outside is below it.
        self.power = LOSS * 2 * max(target - ambient, 2.0)

    def step(self, seconds: float) -> None:
        heat = self.power if self.heater else 0.0
        self.temperature += (heat - LOSS * (self.temperature - self.ambient)) * seconds
        self.temperature += random.gauss(0, 0.02)
        if random.random() < 0.08:
            self.motion = not self.motion

    def reading(self) -> dict[str, Any]:
        return {
            "temperature": round(self.temperature, 2),
            "target": self.target,
            "heater": self.heater,
            "motion": self.motion,
        }

    def obey(self, command: Any) -> None:
        """Apply a command; ignore what isn't one."""
        if not isinstance(command, dict):
            return
        if isinstance(command.get("heater"), bool):
            self.heater = command["heater"]
        target = command.get("target")
        if isinstance(target, int | float) and not isinstance(target, bool):
            self.target = float(target)


class Commands(SubscriptionEventHandler):
    def __init__(self, device: str, thermostat: Thermostat) -> None:
        self.device = device
        self.thermostat = thermostat

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        if ctx.was_recovering:
            logger.info("%s: resubscribed to its commands, recovered: %s", self.device, ctx.recovered)

    async def on_publication(self, ctx: PublicationContext) -> None:
        logger.info("%s: command %s", self.device, json.dumps(ctx.pub.data, ensure_ascii=False))
        self.thermostat.obey(ctx.pub.data)


class Connection(ClientEventHandler):
    def __init__(self, device: str) -> None:
        self.device = device

    async def on_connected(self, ctx: ConnectedContext) -> None:
        logger.info("%s: connected", self.device)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        logger.info("%s: disconnected (%s %s)", self.device, ctx.code, ctx.reason)


def die_with(parent: int) -> None:
    """Get SIGTERM when ``parent`` dies (Linux), so that no device outlives its server."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl: nobody will send the signal
        os.kill(os.getpid(), signal.SIGTERM)


async def run_device(
    device: str, url: str, token: str, thermostat: Thermostat, *, interval: float, parent: int | None
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = Client(url, events=Connection(device), token=token, proxy=None, max_reconnect_delay=2.0)
    commands = client.new_subscription(f"iot:{device}.commands", Commands(device, thermostat))
    await commands.subscribe()
    await client.connect()
    readings = f"iot:{device}.readings"
    try:
        last = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if parent is not None and os.getppid() != parent:
                break  # where prctl isn't there: the server is gone
            now = time.monotonic()
            thermostat.step(now - last)
            last = now
            if client.state is ClientState.CONNECTED:
                try:
                    await client.publish(readings, thermostat.reading(), timeout=interval * 4)
                except Exception as exc:  # lost on the way; the next reading replaces it
                    logger.info("%s: reading not sent: %s", device, exc)
    finally:
        await client.disconnect()


def _token(device: str, config_path: str) -> str:
    from wavecast.realtime.auth import sign_token
    from wavecast.server.config import load_config

    secret = load_config(config_path).node_config().token_hmac_secret_key
    return sign_token(secret, device, ttl=30 * 24 * 3600, info={"role": "device"})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A simulated thermostat on centrifuge-python.")
    parser.add_argument("--id", required=True, help="the device id, e.g. device-1")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/connection/websocket", help="the server's endpoint")
    parser.add_argument("--config", help="a wavecast.toml to sign the device's token with (else $IOT_DEVICE_TOKEN)")
    parser.add_argument("--ambient", type=float, default=12.0, help="the outside temperature, °C")
    parser.add_argument("--target", type=float, default=20.0, help="the initial target temperature, °C")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between readings")
    parser.add_argument("--parent", type=int, help="exit when this process, the device's parent, ends")
    args = parser.parse_args(argv)
    token = os.environ.get("IOT_DEVICE_TOKEN") or (_token(args.id, args.config) if args.config else "")
    if not token:
        parser.error("give --config wavecast.toml, or a token in $IOT_DEVICE_TOKEN")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("centrifuge").setLevel(logging.WARNING)
    if args.parent is not None:
        die_with(args.parent)
    thermostat = Thermostat(ambient=args.ambient, target=args.target)
    asyncio.run(run_device(args.id, args.url, token, thermostat, interval=args.interval, parent=args.parent))


if __name__ == "__main__":
    main(sys.argv[1:])
