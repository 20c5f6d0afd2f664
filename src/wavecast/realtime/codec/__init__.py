"""Codecs of the client protocol: its JSON and Protobuf forms."""

from __future__ import annotations

from .json import JSONCodec, client_info_msg, publication_msg
from .protobuf import ProtobufCodec

__all__ = ["JSONCodec", "ProtobufCodec", "client_info_msg", "publication_msg"]
