"""What several test suites need, written once: plain modules, no fixtures.

Fixtures stay in the ``conftest.py`` files, as thin wrappers over these modules; test modules
import from here, never from a ``conftest.py``.

- :mod:`.timing`: the one scaled unit of time (``MS``), bounded waits, per-suite time bounds.
- :mod:`.cleanup`: what a fixture starts, stopped when the test ends.
- :mod:`.tools`: third-party programs (node, Chromium, redis-server, haproxy), present or explained.
- :mod:`.processes`: free ports, and subprocesses that log to a file and are stopped by their PID.
- :mod:`.config`: the standalone server's test configuration, merged and written as TOML.
- :mod:`.tokens`: the secret the tests sign with, and one JWT helper.
- :mod:`.http`: one plain HTTP request in a thread, and the server API.
- :mod:`.servers`: servers in this process (an echo server, a Node, the standalone server), and
  handlers that record what their connections did.
- :mod:`.serve`: ``wavecast serve`` in a subprocess.
- :mod:`.sdk`: centrifuge-python clients and the events they record.
- :mod:`.js`: Node scripts, the centrifuge-js driver among them.
- :mod:`.raw`: a client of the JSON protocol with no SDK in between.
- :mod:`.protobuf`: commands and replies of the protobuf protocol, as the SDKs' generated code has them.
- :mod:`.peers`: WebSocket peers on bare sockets, which misbehave on demand.
- :mod:`.transports`: server-side connections with no socket, whose writes are kept.
- :mod:`.rpc`: RPC handlers that tests register on their nodes.
- :mod:`.browser`: Chromium through Playwright, and the checks every page we ship must pass.
- :mod:`.tls`: a throwaway CA and certificates.
- :mod:`.redis`: a private redis-server.
- :mod:`.haproxy`: haproxy from the deployment example.
- :mod:`.cluster`: several nodes on one Redis: their configuration, a relay, what chaos tests count.
- :mod:`.memory`: the resident memory of a server process.
- :mod:`.attack`: hostile clients against a server in a subprocess (:mod:`.serverproc`).
- :mod:`.clock`: a clock that moves only when told to.
"""
