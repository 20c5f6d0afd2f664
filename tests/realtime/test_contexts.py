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
