from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

import wavecast.codes
from wavecast.codes import (
    CLOSE_CODE_EXPLANATIONS,
    DISCONNECT_INAPPROPRIATE_PROTOCOL,
    DISCONNECT_INVALID_TOKEN,
    DISCONNECT_SHUTDOWN,
    DISCONNECT_SLOW,
    DISCONNECTS,
    ERROR_PERMISSION_DENIED,
    ERRORS,
    OK_CLOSE_CODES,
    UNSUBSCRIBE_EXPIRED,
    UNSUBSCRIBE_SERVER,
    UNSUBSCRIBES,
    CloseCode,
    Disconnect,
    Error,
    is_valid_close_code,
    reconnect_after,
)


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
    assert frozenset({1000, 1001, 1005}) == OK_CLOSE_CODES


def test_valid_close_codes_follow_rfc_6455_section_7_4() -> None:
    valid = {code for code in range(70000) if is_valid_close_code(code)}
    assert valid == {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}


# --- the real-time protocol's codes (Centrifugo's numbers) -------------------------------------


def test_errors() -> None:
    assert [error.code for error in ERRORS] == list(range(100, 114))
    assert {error.code for error in ERRORS if error.temporary} == {100, 111}
    assert str(ERROR_PERMISSION_DENIED) == "103: permission denied"
    assert Error(400, "room is full") == Error(400, "room is full", temporary=False)


def test_disconnects() -> None:
    codes = [disconnect.code for disconnect in DISCONNECTS]
    assert len(codes) == len(set(codes))
    assert Disconnect(3008, "slow") == DISCONNECT_SLOW
    for disconnect in DISCONNECTS:
        assert 3000 <= disconnect.code < 4000
        assert is_valid_close_code(disconnect.code)
        assert len(disconnect.reason.encode()) <= 123


def test_each_reconnect_flag_follows_the_range_rule() -> None:
    # Clients reconnect after 3000-3499 and 4000-4499, and stop after 3500-3999 and 4500-4999.
    for disconnect in DISCONNECTS:
        assert disconnect.reconnect is (disconnect.code < 3500), disconnect
    assert DISCONNECT_SHUTDOWN.reconnect
    assert not DISCONNECT_INVALID_TOKEN.reconnect


def test_every_code_is_centrifugos() -> None:
    # centrifugal/centrifuge errors.go and disconnect.go; 3507 was once "message size limit"
    # here, which Centrifugo's SDKs would read as "permission denied".
    assert [(e.code, e.message, e.temporary) for e in ERRORS] == [
        (100, "internal server error", True),
        (101, "unauthorized", False),
        (102, "unknown channel", False),
        (103, "permission denied", False),
        (104, "method not found", False),
        (105, "already subscribed", False),
        (106, "limit exceeded", False),
        (107, "bad request", False),
        (108, "not available", False),
        (109, "token expired", False),
        (110, "expired", False),
        (111, "too many requests", True),
        (112, "unrecoverable position", False),
        (113, "token revoked", False),
    ]
    assert sorted((d.code, d.reason, d.reconnect) for d in DISCONNECTS) == [
        (3000, "connection closed", True),
        (3001, "shutdown", True),
        (3004, "internal server error", True),
        (3005, "connection expired", True),
        (3006, "subscription expired", True),
        (3008, "slow", True),
        (3009, "write error", True),
        (3010, "insufficient state", True),
        (3011, "force reconnect", True),
        (3012, "no pong", True),
        (3013, "too many requests", True),
        (3500, "invalid token", False),
        (3501, "bad request", False),
        (3502, "stale", False),
        (3503, "force disconnect", False),
        (3504, "connection limit", False),
        (3505, "channel limit", False),
        (3506, "inappropriate protocol", False),
        (3507, "permission denied", False),
        (3508, "not available", False),
        (3509, "too many errors", False),
    ]


def test_inappropriate_protocol_is_centrifugos() -> None:
    # Centrifugo disconnects a JSON client with it when a channel carries binary data.
    assert Disconnect(3506, "inappropriate protocol") == DISCONNECT_INAPPROPRIATE_PROTOCOL
    assert not DISCONNECT_INAPPROPRIATE_PROTOCOL.reconnect


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (3000, True),
        (3499, True),
        (3500, False),
        (3999, False),
        (4000, True),
        (4499, True),
        (4500, False),
        (4999, False),
    ],
)
def test_reconnect_after(code: int, reconnect: bool) -> None:
    assert reconnect_after(code) is reconnect
    assert Disconnect(code, "app").reconnect is reconnect


def test_unsubscribes() -> None:
    assert [(u.code, u.resubscribe) for u in UNSUBSCRIBES] == [
        (0, False),
        (1, False),
        (2000, False),
        (2500, True),
        (2501, True),
    ]
    assert UNSUBSCRIBE_EXPIRED.resubscribe and not UNSUBSCRIBE_SERVER.resubscribe


def test_every_constant_is_exported() -> None:
    names = {name for name in vars(wavecast.codes) if name.startswith(("ERROR_", "DISCONNECT_", "UNSUBSCRIBE_"))}
    assert names <= set(wavecast.codes.__all__)
    assert len(names) == len(ERRORS) + len(DISCONNECTS) + len(UNSUBSCRIBES)


def test_codes_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DISCONNECT_SLOW.code = 3000  # type: ignore[misc]


# --- spec/codes.json and docs/protocol.md come from this module -----------------------------------

ROOT = Path(__file__).parents[1]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_codes", ROOT / "scripts" / "gen_codes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spec_codes_json_is_generated_from_this_module() -> None:
    assert (ROOT / "spec" / "codes.json").read_text() == load_generator().render(), (
        "spec/codes.json is out of date: run python scripts/gen_codes.py"
    )


def table_after(text: str, heading: str) -> list[list[str]]:
    """Return the cells of the first Markdown table after the line that starts with ``heading``."""
    lines = text[text.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_docs_tables_list_exactly_these_codes() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    errors = table_after(text, "Error codes (in replies)")
    assert [(int(code), message, temporary == "yes") for code, message, temporary in errors] == [
        (error.code, error.message, error.temporary) for error in ERRORS
    ]
    disconnects = table_after(text, "Disconnect codes (WebSocket close codes)")
    assert [(int(row[0]), row[1]) for row in disconnects] == [(d.code, d.reason) for d in DISCONNECTS]
    unsubscribes = table_after(text, "Unsubscribe codes (in `unsubscribe` pushes)")
    # Codes below 2000 are never sent; the table lists the others.
    assert [(int(code), reason, resubscribe == "yes") for code, reason, resubscribe in unsubscribes] == [
        (u.code, u.reason, u.resubscribe) for u in UNSUBSCRIBES if u.code >= 2000
    ]
