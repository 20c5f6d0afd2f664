"""Mount a wavecast Node in an ASGI application (Starlette, FastAPI, ...).

.. code-block:: python

    import wavecast
    from wavecast.asgi import NodeApp

    config = wavecast.Config(client={"token_hmac_secret_key": "a-long-random-secret-of-32-bytes!"})
    node = wavecast.Node(config.node_config())
    app.mount("/realtime", NodeApp(node, api_key="an-api-key"))

Start and stop the node in the application's lifespan (``await node.start()``,
``await node.shutdown()``): a mounted app gets no lifespan events of its own. Pass
``config=config`` instead of ``api_key`` to serve the HTTP routes that the configuration
enables (the API with its key, metrics).
"""

from __future__ import annotations

from .server.asgi import ASGITransport, NodeApp

__all__ = ["ASGITransport", "NodeApp"]
