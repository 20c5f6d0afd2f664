"""wavecast.asgi: the example in its docstring runs as written."""

from __future__ import annotations

import re

from fastapi import FastAPI

import wavecast
import wavecast.asgi
from wavecast.server.asgi import NodeApp


def test_docstring_example_runs() -> None:
    assert wavecast.asgi.__doc__ is not None
    [code] = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", wavecast.asgi.__doc__)
    namespace: dict[str, object] = {"app": FastAPI()}
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "wavecast.asgi example", "exec"), namespace)
    node = namespace["node"]
    assert isinstance(node, wavecast.Node)
    assert node.config.token_hmac_secret_key == "a-long-random-secret-of-32-bytes!"
    app = namespace["app"]
    assert isinstance(app, FastAPI)
    [mount] = [route for route in app.routes if getattr(route, "path", None) == "/realtime"]
    assert isinstance(mount.app, NodeApp)  # type: ignore[attr-defined]
    assert mount.app.routes.config.http_api.key == "an-api-key"  # type: ignore[attr-defined]
