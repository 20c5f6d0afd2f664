"""Every example on one server, listed at ``/``: ``python -m examples.gallery``."""

from __future__ import annotations

import html
from collections.abc import Mapping

from wavecast.server.app import HttpResponse

from ..chat.app import DEMO as CHAT
from ..collab.app import DEMO as COLLAB
from ..game.app import DEMO as GAME
from ..iot.app import DEMO as IOT
from ..kit import Demo
from ..notifications.app import DEMO as NOTIFICATIONS
from ..trading.app import DEMO as TRADING

__all__ = ["DEMOS", "index"]

DEMOS: list[Demo] = [
    CHAT,
    NOTIFICATIONS,
    IOT,
    TRADING,
    GAME,
    COLLAB,
]


async def index(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
    """The gallery: a sentence and a link per demo."""
    items = "\n".join(
        f'<li><a href="/{demo.name}/">{html.escape(demo.title)}</a><p>{html.escape(demo.summary)}</p></li>'
        for demo in DEMOS
    )
    page = PAGE.replace("{items}", items)
    return HttpResponse(200, page.encode(), "text/html; charset=utf-8")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wavecast examples</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; }
h1 { margin-bottom: 0; }
ul { list-style: none; padding: 0; }
li { border: 1px solid #d8dde6; border-radius: 8px; padding: 0.8rem 1rem; margin: 0.8rem 0; }
li a { font-weight: 600; font-size: 1.1rem; }
li p { margin: 0.3rem 0 0; color: #4a5468; }
</style>
</head>
<body>
<h1>wavecast examples</h1>
<p>Each runs live against this server. Open one in two tabs to see it share state.</p>
<ul id="demos">
{items}
</ul>
</body>
</html>
"""
