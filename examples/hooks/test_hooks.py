"""The import-path hooks example, run as its README says: ``wavecast serve --app myapp:setup
--app-dir examples/hooks``, with centrifuge-python clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from centrifuge import ReplyError
from tests.support.cleanup import stopping
from tests.support.config import BASE_CONFIG, merge, write_config
from tests.support.processes import free_port
from tests.support.sdk import Clients, subscribe, subscribe_refused
from tests.support.serve import ServeProcess, wavecast_command

HERE = Path(__file__).resolve().parent


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServeProcess]:
    path = write_config(tmp_path, merge(BASE_CONFIG, {"namespaces": {"team": {}}}))
    command = [*wavecast_command(), "serve", "--app", "myapp:setup", "--app-dir", str(HERE)]

    def start() -> ServeProcess:
        return ServeProcess(path, free_port(), cwd=tmp_path, command=command)

    async with stopping(start, ServeProcess.kill, ready=ServeProcess.wait_ready) as start_one:
        yield await start_one()


async def test_rpc_and_team_channels(server: ServeProcess, make_client: Clients) -> None:
    alice, _ = await make_client.connected(server.ws_url, "alice")
    assert (await alice.rpc("sum", {"numbers": [1, 2, 3.5]})).data == {"sum": 6.5, "user": "alice"}
    with pytest.raises(ReplyError) as raised:
        await alice.rpc("sum", {"numbers": "three"})
    assert raised.value.code == 107
    subscribed = await subscribe(alice, "team:red")
    assert subscribed.named("subscribed")

    carol, _ = await make_client.connected(server.ws_url, "carol")
    refused = await subscribe_refused(carol, "team:red")
    assert (refused.code, refused.reason) == (103, "permission denied")
    await subscribe(carol, "team:blue")
