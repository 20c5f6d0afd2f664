"""Collaborative editing: one text edited in many tabs, merged by a CRDT (Yjs and pycrdt).

Each document is a channel, ``collab:<doc>``, whose publications are binary, so the page
speaks the Protobuf form of the protocol. A publication's first byte says what it holds:

- ``UPDATE`` (0): a Yjs update. The namespace's ``on_publish`` hook applies it to the
  server's copy of the document (a pycrdt ``Doc``), refusing what doesn't decode, and lets
  it through to the other tabs.
- ``CURSOR`` (1): where the sender's cursor is, as a Yjs relative position, which stays
  where it was meant to be while others edit. Cursors are ephemeral: relayed, not kept.

A page subscribes first and then calls the ``collab.sync`` RPC with its state vector; the
answer holds what the server has that the page lacks, and the server's state vector, from
which the page computes what it has that the server lacks (edits made offline) and
publishes it. Live updates that arrive before the sync's answer are safe to apply: Yjs keeps
an update whose dependencies haven't arrived until they do. The same sync runs after every
reconnect, so no history is needed. Presence says who is editing.

Run it alone with ``python -m examples.collab``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from urllib.parse import parse_qs

from pycrdt import Doc, Text

from wavecast.codes import ERROR_BAD_REQUEST, Error
from wavecast.exceptions import CommandError
from wavecast.realtime import ChannelOptions
from wavecast.realtime.contexts import PublishContext, PublishResult, RPCContext
from wavecast.server.app import HttpResponse

from ..kit import Demo, DemoContext, json_response

__all__ = ["CURSOR", "DEMO", "UPDATE", "Documents"]

UPDATE = 0
CURSOR = 1
#: Documents kept in memory, and characters per document, at most.
MAX_DOCUMENTS = 64
MAX_LENGTH = 20_000
WELCOME = "Type here, in several tabs at once: edits merge without conflicts.\n"

ERROR_TOO_MANY_DOCUMENTS = Error(400, "too many documents")
ERROR_DOCUMENT_FULL = Error(401, "the document is full")

COLLAB = ChannelOptions(
    presence=True,
    join_leave=True,
    force_push_join_leave=True,
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    allow_presence_for_subscriber=True,
)


class Documents:
    """The server's copy of each document, by name."""

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}

    def get(self, name: str) -> Doc:
        doc = self.docs.get(name)
        if doc is None:
            if len(self.docs) >= MAX_DOCUMENTS:
                raise CommandError(ERROR_TOO_MANY_DOCUMENTS)
            doc = self.docs[name] = Doc()
            text = doc.get("text", type=Text)
            if name == "welcome":
                text += WELCOME
        return doc

    def text(self, name: str) -> str:
        return str(self.get(name).get("text", type=Text))

    def apply(self, name: str, update: bytes) -> None:
        """Apply a Yjs update from a page.

        Raises:
            CommandError: 107 if it doesn't decode, 401 if the document is full.
        """
        doc = self.get(name)
        if len(doc.get("text", type=Text)) > MAX_LENGTH:
            raise CommandError(ERROR_DOCUMENT_FULL)
        try:
            doc.apply_update(update)
        except ValueError:
            raise CommandError(ERROR_BAD_REQUEST) from None

    def sync(self, name: str, state_vector: bytes) -> bytes:
        """What the server has beyond ``state_vector``, then the server's state vector.

        The answer is the update's length (4 bytes, big-endian), the update, and the
        state vector.
        """
        doc = self.get(name)
        try:
            update = doc.get_update(state_vector)
        except ValueError:
            raise CommandError(ERROR_BAD_REQUEST) from None
        return struct.pack(">I", len(update)) + update + doc.get_state()


def _document(channel: str) -> str:
    return channel.partition(":")[2]


def setup(ctx: DemoContext) -> None:
    documents = Documents()

    @ctx.hooks.publishing("collab")
    async def publishing(pub: PublishContext) -> PublishResult | None:
        if not pub.session.is_subscribed(pub.channel) or not pub.data:
            raise CommandError(ERROR_BAD_REQUEST)
        kind = pub.data[0]
        if kind == UPDATE:
            documents.apply(_document(pub.channel), pub.data[1:])
        elif kind != CURSOR or len(pub.data) > 256:
            raise CommandError(ERROR_BAD_REQUEST)
        return None

    @ctx.node.rpc("collab.sync")
    async def sync(rpc: RPCContext) -> bytes:
        """``data``: the document's name (one byte of length, then UTF-8), then a state vector."""
        data = rpc.data or b""
        if not data or len(data) < 1 + data[0]:
            raise CommandError(ERROR_BAD_REQUEST)
        name = data[1 : 1 + data[0]].decode(errors="replace")
        if not rpc.session.is_subscribed(f"collab:{name}"):
            raise CommandError(ERROR_BAD_REQUEST)
        return documents.sync(name, data[1 + data[0] :])

    @ctx.route("text")
    async def text(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """The server's copy of a document as plain text: ``?doc=NAME``."""
        name = parse_qs(query).get("doc", ["welcome"])[0]
        if name not in documents.docs:
            return json_response({"error": "no such document"}, 404)
        return json_response({"doc": name, "text": documents.text(name)})


DEMO = Demo(
    name="collab",
    title="Collaborative editing",
    summary=(
        "A text edited in several tabs at once and merged without conflicts by a CRDT (Yjs in the page, "
        "pycrdt on the server), carried as binary publications, with everyone's cursor."
    ),
    namespaces={"collab": COLLAB},
    setup=setup,
)
