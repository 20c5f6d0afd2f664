"""IoT: devices in their own processes publish readings; a rule in the server commands them.

Each device (``device.py``, on centrifuge-python) publishes its readings to
``iot:<id>.readings`` and obeys what is published to ``iot:<id>.commands``. The server's
``on_publish`` hook for the ``iot`` namespace admits a reading from that device only,
and runs the thermostat rule on it: below the target minus a band the heater goes on, above
the target plus the band it goes off, and in between it stays as it is (hysteresis), so a
reading hovering at the target doesn't flip it on every tick. The page shows the readings
and sets a device's target through the ``iot.set_target`` RPC.

Run it alone with ``python -m examples.iot``: it starts the devices as subprocesses and
stops them on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

from wavecast.codes import ERROR_PERMISSION_DENIED, Error
from wavecast.exceptions import CommandError
from wavecast.realtime import (
    WEBSOCKET_PATH,
    ChannelOptions,
    DisconnectContext,
    Node,
    PublishContext,
    PublishResult,
    RPCContext,
)
from wavecast.server.app import HttpResponse

from ..kit import EXAMPLES, Demo, DemoContext, json_response

__all__ = ["BAND", "DEMO", "DEVICES", "DeviceSpec", "Rule", "comparison", "thermostat"]

logger = logging.getLogger("wavecast.examples.iot")

IOT = ChannelOptions(
    presence=True,  # a device is online while it is subscribed to its commands
    join_leave=True,
    history_size=100,
    history_ttl=600.0,
    force_recovery=True,  # a device reconnecting gets the commands it missed
    allow_subscribe_for_client=True,
    allow_presence_for_subscriber=True,
    allow_history_for_subscriber=True,
    # Publishing is the hook's to decide: readings from their own device, commands from nobody.
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceSpec:
    id: str
    label: str
    ambient: float
    target: float


DEVICES = (
    DeviceSpec(id="device-1", label="Greenhouse", ambient=14.0, target=21.0),
    DeviceSpec(id="device-2", label="Workshop", ambient=10.0, target=17.0),
    DeviceSpec(id="device-3", label="Cellar", ambient=6.0, target=12.0),
)

#: Degrees either side of the target within which the heater is left as it is.
BAND = 0.5
TARGETS = (5.0, 35.0)
_CHANNEL = re.compile(r"^iot:([\w-]{1,32})\.(readings|commands)$")
_BAD_READING = Error(400, 'expected {"temperature": <number>, "target": <number>, "heater": <bool>, ...}')


def thermostat(temperature: float, target: float, heater: bool) -> bool | None:
    """The heater state a reading calls for, or ``None`` to leave it as it is."""
    if temperature < target - BAND and not heater:
        return True
    if temperature > target + BAND and heater:
        return False
    return None


def comparison(value: float, sign: str, bound: float) -> str:
    """Write ``value sign bound`` in °C with as many decimals as it takes to read true, one at least.

    To one decimal the rule's 16.46 < 16.5 would read "16.5 °C < 16.5 °C". Rounding never
    reverses an order, so the first precision at which the two differ shows the right one.
    """
    for digits in range(1, 7):
        shown = f"{value:.{digits}f}", f"{bound:.{digits}f}"
        if float(shown[0]) != float(shown[1]):
            return f"{shown[0]} °C {sign} {shown[1]} °C"
    # Closer than a millionth: the shortest forms that tell the two floats apart.
    return f"{value!r} °C {sign} {bound!r} °C"


def _now() -> int:
    return int(time.time() * 1000)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reading(data: bytes) -> dict[str, Any]:
    try:
        reading = json.loads(data)
    except ValueError:
        raise CommandError(_BAD_READING) from None
    if not (
        isinstance(reading, dict)
        and _number(reading.get("temperature"))
        and _number(reading.get("target"))
        and isinstance(reading.get("heater"), bool)
    ):
        raise CommandError(_BAD_READING)
    return {
        "temperature": float(reading["temperature"]),
        "target": float(reading["target"]),
        "heater": reading["heater"],
        "motion": bool(reading.get("motion")),
    }


def _is_device(info: bytes | None) -> bool:
    try:
        return bool(json.loads(info or b"null").get("role") == "device")
    except (ValueError, AttributeError):
        return False


class Rule:
    """The thermostat rule, run on every reading, and what it has asked for."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # The heater state commanded and not yet seen in a reading, per device: not sent again.
        self.pending: dict[str, bool] = {}
        self.seen: set[str] = set()

    async def on_reading(self, device: str, reading: Mapping[str, Any]) -> None:
        self.seen.add(device)
        if self.pending.get(device) == reading["heater"]:
            del self.pending[device]
        wanted = thermostat(reading["temperature"], reading["target"], reading["heater"])
        if wanted is None or self.pending.get(device) == wanted:
            return
        self.pending[device] = wanted
        sign = "<" if wanted else ">"
        edge = reading["target"] - BAND if wanted else reading["target"] + BAND
        reason = comparison(reading["temperature"], sign, edge)
        command = {"heater": wanted, "by": "rule", "reason": reason, "time": _now()}
        await self.node.publish(f"iot:{device}.commands", command)

    def forget(self, device: str) -> None:
        """A device disconnected: what it was sent may never be seen; ask again when needed."""
        self.pending.pop(device, None)


class Fleet:
    """The device processes: started when the server listens, stopped before it shuts down."""

    def __init__(self, ctx: DemoContext, devices: tuple[DeviceSpec, ...]) -> None:
        self.ctx = ctx
        self.devices = devices
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def run(self, node: Node) -> None:
        url = self.ctx.url.replace("http", "ws", 1) + WEBSOCKET_PATH
        try:
            for spec in self.devices:
                await self._start(spec, url)
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _start(self, spec: DeviceSpec, url: str) -> None:
        token = self.ctx.token(spec.id, ttl=30 * 24 * 3600, info={"role": "device"})
        python_path = os.pathsep.join(filter(None, [str(EXAMPLES.parent), os.environ.get("PYTHONPATH")]))
        # A session of its own: Ctrl-C in the terminal reaches the server, which stops the
        # devices in order; --parent makes a device exit if the server dies without doing so.
        self.processes[spec.id] = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "examples.iot.device", "--id", spec.id, "--url", url),
            *("--ambient", str(spec.ambient), "--target", str(spec.target), "--parent", str(os.getpid())),
            env={**os.environ, "PYTHONPATH": python_path, "IOT_DEVICE_TOKEN": token},
            start_new_session=True,
        )
        logger.info("started %s (%s), pid %d", spec.id, spec.label, self.processes[spec.id].pid)

    async def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM each device, wait for it to disconnect and exit; SIGKILL what doesn't."""
        running = [process for process in self.processes.values() if process.returncode is None]
        if not running:
            return
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        _, late = await asyncio.wait([asyncio.create_task(p.wait()) for p in running], timeout=timeout)
        for process in running:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in late:
            await task

    def listing(self, seen: set[str]) -> list[dict[str, Any]]:
        """The devices started here, with their pids, then others that published readings."""
        known = {spec.id for spec in self.devices}
        pids = {device: process.pid for device, process in self.processes.items()}
        listed = [{"id": spec.id, "label": spec.label, "pid": pids.get(spec.id)} for spec in self.devices]
        return listed + [{"id": device, "label": device, "pid": None} for device in sorted(seen - known)]


def setup(ctx: DemoContext) -> None:
    rule = Rule(ctx.node)
    fleet = Fleet(ctx, DEVICES)
    ctx.task(fleet.run)

    @ctx.hooks.publishing("iot")
    async def on_publish(publish: PublishContext) -> PublishResult:
        match = _CHANNEL.match(publish.channel)
        session = publish.session
        if match is None or match[2] != "readings" or session.user != match[1] or not _is_device(session.info):
            raise CommandError(ERROR_PERMISSION_DENIED)
        reading = _reading(publish.data)
        await rule.on_reading(match[1], reading)
        return PublishResult(data=json.dumps(reading, separators=(",", ":")).encode())

    @ctx.hooks.disconnected
    async def on_disconnect(disconnect: DisconnectContext) -> None:
        if _is_device(disconnect.session.info):
            rule.forget(disconnect.session.user)

    @ctx.node.rpc("iot.set_target")
    async def set_target(rpc: RPCContext) -> dict[str, Any]:
        """``{"device": "device-1", "target": 22.5}``: a command to the device, from the page."""
        try:
            request = json.loads(rpc.data or b"null")
            device, target = request["device"], request["target"]
        except (ValueError, KeyError, TypeError):
            raise CommandError(Error(400, 'expected {"device": ..., "target": ...}')) from None
        if not isinstance(device, str) or not re.fullmatch(r"[\w-]{1,32}", device):
            raise CommandError(Error(400, "unknown device"))
        if not _number(target) or not TARGETS[0] <= target <= TARGETS[1]:
            raise CommandError(Error(400, f"a target is {TARGETS[0]:.0f} to {TARGETS[1]:.0f} °C"))
        position = await ctx.node.publish(
            f"iot:{device}.commands", {"target": round(float(target), 1), "by": rpc.session.user, "time": _now()}
        )
        return {"offset": position.offset if position else 0}

    @ctx.route("devices")
    async def devices(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        return json_response({"devices": fleet.listing(rule.seen), "band": BAND, "targets": TARGETS})


DEMO = Demo(
    name="iot",
    title="IoT",
    summary="Simulated thermostats in their own processes publish readings; a rule in the server "
    "switches their heaters, and commands missed while offline reach them on reconnect.",
    namespaces={"iot": IOT},
    setup=setup,
)
