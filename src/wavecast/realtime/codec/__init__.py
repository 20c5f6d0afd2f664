"""Codecs of the client protocol: JSON now, Protobuf later."""

from __future__ import annotations

from .json import JSONCodec, client_info_msg, publication_msg

__all__ = ["JSONCodec", "client_info_msg", "publication_msg"]
