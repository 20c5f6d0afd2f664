"""The protobuf form of the client protocol, as the SDKs' generated code writes and reads it.

Commands and replies are given in proto3's JSON mapping (bytes in base64, 64-bit integers as
strings); on the wire each is length-delimited, several to a WebSocket message.
"""

from __future__ import annotations

from typing import Any

__all__ = ["protobuf_command", "protobuf_messages", "protobuf_replies"]


def protobuf_command(command: dict[str, Any]) -> bytes:
    """A length-delimited Command from proto3 JSON, serialized by the SDK's generated code."""
    from centrifuge.protocol import client_pb2
    from google.protobuf.json_format import ParseDict

    serialized: bytes = ParseDict(command, client_pb2.Command()).SerializeToString()
    return _varint(len(serialized)) + serialized


def protobuf_messages(data: bytes) -> list[bytes]:
    """Split a WebSocket message into its length-delimited messages, as the SDKs do."""
    messages, pos = [], 0
    while pos < len(data):
        length = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        messages.append(data[pos : pos + length])
        pos += length
    return messages


def protobuf_replies(data: bytes) -> list[dict[str, Any]]:
    """Read length-delimited replies with the SDK's generated code, into proto3 JSON."""
    from centrifuge.protocol import client_pb2
    from google.protobuf.json_format import MessageToDict

    return [
        MessageToDict(client_pb2.Reply.FromString(message), preserving_proto_field_name=True)
        for message in protobuf_messages(data)
    ]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
