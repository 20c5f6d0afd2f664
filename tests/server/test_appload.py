"""The application's hooks by import path: ``wavecast serve --app module:setup`` and
``checkconfig``, with a module written to the test's directory, exercised with
centrifuge-python; every way the import or the setup can fail, through the CLI."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from centrifuge import ReplyError

from wavecast.exceptions import AppLoadError
from wavecast.realtime import Node, NodeConfig
from wavecast.server.appload import import_setup, load_app

from ..support.config import BASE_CONFIG, merge, write_config
from ..support.sdk import Clients, subscribe, subscribe_refused
from ..support.serve import StartServe
from ..support.tokens import make_token
from .test_cli import wavecast

#: An application as a user writes one: a sync setup that registers an RPC and an
#: on_subscribe hook that keeps "news:secret" for alice.
HOOKS = """\
import json

from wavecast.codes import ERROR_PERMISSION_DENIED
from wavecast.exceptions import CommandError


def setup(node):
    @node.rpc("echo")
    async def echo(ctx):
        return {"echo": json.loads(ctx.data), "user": ctx.session.user}

    @node.subscribing
    async def on_subscribe(ctx):
        if ctx.channel == "news:secret" and ctx.session.user != "alice":
            raise CommandError(ERROR_PERMISSION_DENIED)
        return None
"""


def module(directory: Path, name: str, source: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


def config(tmp_path: Path, **server: str) -> Path:
    return write_config(tmp_path, merge(BASE_CONFIG, {"server": server}))


async def test_serve_app_registers_rpc_and_subscribe_hook(
    tmp_path: Path, start_serve: StartServe, make_client: Clients
) -> None:
    module(tmp_path, "myhooks", HOOKS)
    # Set by the environment, with the module in the current directory, as uvicorn finds one.
    path = config(tmp_path)
    process = await start_serve(path, env={"WAVECAST_SERVER__APP": "myhooks:setup"})
    assert "loaded the application's hooks from myhooks:setup" in process.log

    alice, _ = await make_client.connected(process.ws_url, "alice")
    assert (await alice.rpc("echo", {"n": 1})).data == {"echo": {"n": 1}, "user": "alice"}
    await subscribe(alice, "news:secret")

    bob, _ = await make_client.connected(process.ws_url, "bob")
    unsubscribed = await subscribe_refused(bob, "news:secret")
    assert (unsubscribed.code, unsubscribed.reason) == (103, "permission denied")
    # The hook lets the rest through, and methods it didn't register are still unknown.
    await subscribe(bob, "news:public")
    with pytest.raises(ReplyError) as raised:
        await bob.rpc("missing", {})
    assert raised.value.code == 104
    assert await process.stop() == 0


async def test_serve_app_flag_and_app_dir_with_an_async_setup(
    tmp_path: Path, start_serve: StartServe, make_client: Clients
) -> None:
    module(
        tmp_path / "backend" / "pkg",
        "hooks",
        """\
        import asyncio

        class Registry:
            async def setup(self, node):
                await asyncio.sleep(0)  # an application may await its own resources here
                @node.rpc("ping")
                async def ping(ctx):
                    return "pong"

        registry = Registry()
        """,
    )
    (tmp_path / "backend" / "pkg" / "__init__.py").write_text("")
    path = config(tmp_path, app="pkg.hooks:registry.setup", app_dir="backend")
    process = await start_serve(path)
    client, _ = await make_client.connected(process.ws_url, "alice", token=make_token("alice"))
    assert (await client.rpc("ping", None)).data == "pong"


# --- errors, through the CLI ------------------------------------------------------------------------

BROKEN_AT_IMPORT = """\
import json

def helper():
    return 1 / 0

helper()
"""

BROKEN_SETUP = """\
def setup(node):
    raise RuntimeError("the database is unreachable")
"""

IMPORTS_MISSING = """\
import not_installed_anywhere

def setup(node):
    pass
"""


@pytest.mark.parametrize(
    ("source", "app", "expected", "traceback"),
    [
        (None, "nowhere:setup", "server.app: can't load 'nowhere:setup': no module named 'nowhere'", None),
        (
            "x = 1\n",
            "mod:setup",
            "server.app: can't load 'mod:setup': module 'mod' has no attribute 'setup'",
            None,
        ),
        ("setup = 42\n", "mod:setup", "server.app: can't load 'mod:setup': 'setup' isn't callable: it is int 42", None),
        (
            "def setup():\n    pass\n",
            "mod:setup",
            "server.app: can't load 'mod:setup': 'setup' must take one argument, the node: its signature is ()",
            None,
        ),
        (None, "mod", "server.app: can't load 'mod': expected \"<module>:<attribute>\"", None),
        (
            BROKEN_AT_IMPORT,
            "mod:setup",
            "server.app: can't load 'mod:setup': importing 'mod' failed",
            ("line 4, in helper", "ZeroDivisionError: division by zero"),
        ),
        (
            IMPORTS_MISSING,
            "mod:setup",
            "server.app: can't load 'mod:setup': importing 'mod' failed",
            ("line 1, in <module>", "ModuleNotFoundError: No module named 'not_installed_anywhere'"),
        ),
    ],
    ids=["missing-module", "missing-attribute", "not-callable", "wrong-signature", "no-colon", "raises", "imports"],
)
def test_import_errors_in_serve_and_checkconfig(
    tmp_path: Path, source: str | None, app: str, expected: str, traceback: tuple[str, str] | None
) -> None:
    if source is not None:
        module(tmp_path, "mod", source)
    path = config(tmp_path)
    for command in ("serve", "checkconfig"):
        result = wavecast(command, "--config", str(path), "--app", app, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.splitlines()
        assert lines[0].startswith(f"wavecast: {expected}"), result.stderr
        if traceback is None:
            assert "Traceback" not in result.stderr
        else:
            # The application's frames, with its file named, and none of the import machinery's.
            assert lines[1] == "Traceback (most recent call last):"
            assert f'File "{tmp_path / "mod.py"}", {traceback[0]}' in result.stderr
            assert lines[-1] == traceback[1]
            assert "importlib" not in result.stderr
            assert "appload.py" not in result.stderr


def test_setup_that_raises_stops_serve_but_passes_checkconfig(tmp_path: Path) -> None:
    module(tmp_path, "mod", BROKEN_SETUP)
    path = config(tmp_path, app="mod:setup")
    result = wavecast("serve", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "wavecast: server.app: can't load 'mod:setup': the setup function failed"
    assert lines[1] == "Traceback (most recent call last):"
    assert f'File "{tmp_path / "mod.py"}", line 2, in setup' in result.stderr
    assert lines[-1] == "RuntimeError: the database is unreachable"
    # checkconfig imports without calling the setup, which may need the application's resources.
    result = wavecast("checkconfig", "--config", str(path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"{path}: OK, application mod:setup imported\n")


def test_workers_refuse_to_start_an_application_that_cant_be_imported(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, merge(BASE_CONFIG, {"server": {"workers": 2, "app": "nowhere:setup"}, "engine": {"type": "redis"}})
    )
    result = wavecast("serve", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "wavecast: server.app: can't load 'nowhere:setup': "
        f"no module named 'nowhere' (searched {tmp_path} and sys.path)"
    ]


# --- in process -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo what the loader puts on ``sys.path`` in this process."""
    monkeypatch.setattr(sys, "path", list(sys.path))


async def test_load_app_calls_sync_and_async_setups(tmp_path: Path) -> None:
    module(
        tmp_path, "both", "def sync(node):\n    node.seen = 'sync'\n\nasync def coro(node):\n    node.seen = 'async'\n"
    )
    node = Node(NodeConfig())
    await load_app(node, "both:sync", str(tmp_path))
    assert node.seen == "sync"  # type: ignore[attr-defined]
    await load_app(node, "both:coro", str(tmp_path))
    assert node.seen == "async"  # type: ignore[attr-defined]


def test_error_carries_path_reason_and_details(tmp_path: Path) -> None:
    module(tmp_path, "broken", BROKEN_AT_IMPORT)
    with pytest.raises(AppLoadError) as raised:
        import_setup("broken:setup", str(tmp_path))
    error = raised.value
    assert (error.path, error.reason) == ("broken:setup", "importing 'broken' failed")
    assert error.details.endswith("ZeroDivisionError: division by zero")
    assert isinstance(error.__cause__, ZeroDivisionError)
