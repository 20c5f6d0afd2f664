"""Delta compression of publications for the subscribers that negotiated it (``delta: "fossil"``).

As in Centrifugo v6 (https://centrifugal.dev/docs/server/delta_compression): a subscriber that
asks for ``delta: "fossil"`` in a namespace whose ``allowed_delta_types`` holds it gets
``delta: true`` in its subscribe reply. From then on each publication it receives is either
full (``delta: false``) or, when the publisher marked it ``delta`` and the subscriber has
received a publication of the channel before, a fossil delta against that previous one
(``delta: true``), whichever is shorter. A JSON subscriber receives both forms as a JSON
string: the delta's text, or the publication's JSON text, which the SDK parses; a protobuf
subscriber receives the bytes as they are. Recovered publications are sent full and the last
of them is the base of the next delta. History replies are never delta-encoded.

Each subscriber's previous publication data is kept on its subscription (``base``); the fan-out
computes one delta per distinct base (usually one: the channel's previous publication), and
sends it to every subscriber with that base, as it sends plain publications.
"""

from __future__ import annotations

import msgspec

from ..engines.base import Publication
from ..protocol.prepared import PreparedMessage
from . import fossil
from .codec import Codec
from .codec.schema import PublicationMsg, Push, Reply, publication_msg

__all__ = ["MAX_DELTA_SIZE", "full_msg", "prepare"]

_encode_json = msgspec.json.Encoder().encode

#: Data this long or longer, or a base this long, goes in full: the encoder is pure Python, and
#: its time grows with the bytes it has to match (about 2 ms for 4 KiB that match nothing,
#: 100 ms for 64 KiB, measured with ``fossil.create`` on random bytes), all spent in one turn
#: of the event loop.
MAX_DELTA_SIZE = 65536


def full_msg(message: PublicationMsg, text: bool) -> PublicationMsg:
    """The full form of a publication for a delta subscriber: its JSON as a string in JSON."""
    if text and message.data:
        # Data that enters is strict UTF-8 JSON (codec.json.binary_or_json), so it decodes.
        message.data = msgspec.Raw(_encode_json(bytes(message.data).decode()))
    return message


def prepare(
    codec: Codec, channel: str, publication: Publication, base: bytes | None, channel_id: int = 0
) -> PreparedMessage:
    """The push of ``publication`` for delta subscribers whose previous publication was ``base``,
    naming the channel by ``channel_id`` for subscribers that negotiated channel compaction."""
    text = not codec.binary
    message = publication_msg(publication)
    data = publication.data
    if base is not None and publication.delta and len(data) < MAX_DELTA_SIZE and len(base) < MAX_DELTA_SIZE:
        patch = fossil.create(base, data)
        if len(patch) < len(data):
            if not text:
                message.data = msgspec.Raw(patch)
                message.delta = True
            else:
                try:
                    # A patch inserts bytes of the target cut where its copies start, which
                    # may split a character: a JSON string can't carry that, full data can.
                    patch_text = patch.decode()
                except UnicodeDecodeError:
                    patch_text = None
                if patch_text is not None:
                    message.data = msgspec.Raw(_encode_json(patch_text))
                    message.delta = True
    if not message.delta:
        message = full_msg(message, text)
    push = Push(id=channel_id, pub=message) if channel_id else Push(channel=channel, pub=message)
    return PreparedMessage(codec.encode_reply(Reply(push=push)), text=text)
