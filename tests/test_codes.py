from __future__ import annotations

import pytest

from wavecast.codes import CLOSE_CODE_EXPLANATIONS, OK_CLOSE_CODES, CloseCode, is_valid_close_code


def test_close_codes_are_rfc_6455() -> None:
    assert {code.name: int(code) for code in CloseCode} == {
        "NORMAL_CLOSURE": 1000,
        "GOING_AWAY": 1001,
        "PROTOCOL_ERROR": 1002,
        "UNSUPPORTED_DATA": 1003,
        "NO_STATUS_RCVD": 1005,
        "ABNORMAL_CLOSURE": 1006,
        "INVALID_DATA": 1007,
        "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009,
        "MANDATORY_EXTENSION": 1010,
        "INTERNAL_ERROR": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "BAD_GATEWAY": 1014,
        "TLS_HANDSHAKE": 1015,
    }


def test_every_close_code_is_explained() -> None:
    assert set(CLOSE_CODE_EXPLANATIONS) == set(CloseCode)


@pytest.mark.parametrize(
    ("code", "explanation"),
    [
        (1000, "OK"),
        (CloseCode.MESSAGE_TOO_BIG, "message too big"),
        (1006, "abnormal closure [internal]"),
        (3000, "registered"),
        (3999, "registered"),
        (4000, "private use"),
        (4999, "private use"),
        (1004, "unknown"),
        (2999, "unknown"),
        (5000, "unknown"),
        (0, "unknown"),
    ],
)
def test_describe(code: int, explanation: str) -> None:
    assert CloseCode.describe(code) == explanation


def test_ok_close_codes() -> None:
    assert frozenset({1000, 1001}) == OK_CLOSE_CODES


def test_valid_close_codes_follow_rfc_6455_section_7_4() -> None:
    valid = {code for code in range(70000) if is_valid_close_code(code)}
    assert valid == {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}
