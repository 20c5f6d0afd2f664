"""Fuzz the handshake parsers: ``python fuzzing/fuzz_handshake.py [-max_total_time=60]``."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from harness import feed

    from wavecast.protocol import ClientProtocol, Request, ServerProtocol, parse_uri

URI = parse_uri("ws://example.com/chat")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    server_side = fdp.ConsumeBool()
    splits = [fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    if server_side:
        server = ServerProtocol(subprotocols=["chat"])
        feed(server, payload, splits)
        # A request that parsed must be answerable, whatever it holds.
        if isinstance(server.request, Request):
            server.accept(server.request)
    else:
        client = ClientProtocol(URI)
        client.send_request(client.connect())
        client.data_to_send()
        feed(client, payload, splits)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
