"""Mount a wavecast Node in an ASGI application (Starlette, FastAPI, ...).

.. code-block:: python

    node = wavecast.Node(config)
    app.mount("/realtime", wavecast.asgi.NodeApp(node, api_key="..."))
"""

from __future__ import annotations

from .server.asgi import ASGITransport, NodeApp

__all__ = ["ASGITransport", "NodeApp"]
