"""The standalone server, ``wavecast serve``: configuration, HTTP routes, metrics, ASGI.

Its modules are imported on demand (the CLI, :mod:`wavecast.asgi`), so that ``import wavecast``
loads neither prometheus_client nor the HTTP API.
"""

from __future__ import annotations

__all__: list[str] = []
