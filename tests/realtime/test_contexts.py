"""What hooks return is checked where it enters: info is JSON, on one line."""

from __future__ import annotations

import pytest

from wavecast.realtime import ConnectResult, SubscribeResult


@pytest.mark.parametrize("result", [ConnectResult, SubscribeResult])
def test_info_is_json_on_one_line(result: type[ConnectResult] | type[SubscribeResult]) -> None:
    kwargs = {"user": "u"} if result is ConnectResult else {}
    assert result(info=b'{"name":\n "Ann"}', **kwargs).info == b'{"name":"Ann"}'  # type: ignore[arg-type]
    assert result(**kwargs).info is None  # type: ignore[arg-type]
    for info in (b"\x00binary", b'"\xff"', b"{"):
        with pytest.raises(ValueError, match="info must be JSON"):
            result(info=info, **kwargs)  # type: ignore[arg-type]


async def test_allowed_by_options_is_what_the_node_decides_without_a_hook() -> None:
    from wavecast.realtime import ChannelOptions, Node, NodeConfig, PublishContext, SubscribeContext
    from wavecast.realtime.session import CONNECTED, Session

    from .helpers import FakeTransport

    node = Node(
        NodeConfig(
            channel=ChannelOptions(allow_subscribe_for_client=True, allow_publish_for_client=True),
            namespaces={"closed": ChannelOptions(), "protected": ChannelOptions(protected=True)},
        )
    )
    session = Session(node, FakeTransport())
    session.user, session.state = "42", CONNECTED
    try:
        for channel, allowed in (("open", True), ("closed:x", False), ("protected:x", False), ("unknown:x", False)):
            assert SubscribeContext(session=session, channel=channel, data=None).allowed_by_options() is allowed
            assert PublishContext(session=session, channel=channel, data=b"{}").allowed_by_options() is allowed
    finally:
        session.disconnect()
