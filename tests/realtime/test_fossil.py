"""Fossil deltas: what :func:`fossil.create` makes, the SDKs' decoders turn back into the target."""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from centrifuge.fossil import apply_delta
from hypothesis import given, settings, strategies as st

from wavecast.realtime import fossil

from ..support.tools import ROOT, node


def edits(seed: int, count: int) -> list[tuple[bytes, bytes]]:
    """Pairs of a source and a target made from it by random cuts and inserts."""
    rnd = random.Random(seed)
    pairs = []
    for _ in range(count):
        source = bytes(rnd.choice(b'abcdefgh {}":,0123\xc3\xa9') for _ in range(rnd.randint(0, 600)))
        target = bytearray(source)
        for _ in range(rnd.randint(0, 12)):
            at = rnd.randint(0, len(target))
            if rnd.random() < 0.5:
                target[at : at + rnd.randint(0, 40)] = b""
            else:
                target[at:at] = bytes(rnd.choice(b"xyz123") for _ in range(rnd.randint(0, 40)))
        pairs.append((source, bytes(target)))
    return pairs


@given(st.binary(max_size=400), st.binary(max_size=400))
@settings(max_examples=300)
def test_any_target_from_any_source(source: bytes, target: bytes) -> None:
    delta = fossil.create(source, target)
    assert apply_delta(source, delta) == target
    assert fossil.apply(source, delta) == target


@given(st.binary(min_size=17, max_size=400), st.integers(0, 400), st.binary(max_size=30))
def test_a_small_edit_gives_a_small_delta(source: bytes, at: int, insert: bytes) -> None:
    target = source[:at] + insert + source[at:]
    delta = fossil.create(source, target)
    assert apply_delta(source, delta) == target
    # Two copies and the insert, each with a few digits, the header and the checksum; the
    # insert may carry up to a hash window (16 bytes) before the next match is found.
    assert len(delta) <= len(insert) + 64


def test_centrifuge_python_decodes_edits() -> None:
    for source, target in edits(1, 500):
        assert apply_delta(source, fossil.create(source, target)) == target


def test_a_board_update_is_a_fraction_of_the_board() -> None:
    board = {"rows": [{"symbol": f"S{i}", "bid": 100 + i, "ask": 101 + i} for i in range(50)]}
    before = json.dumps(board).encode()
    board["rows"][7]["bid"] = 999
    after = json.dumps(board).encode()
    delta = fossil.create(before, after)
    assert fossil.apply(before, delta) == after
    assert len(delta) * 20 < len(after)


def json_edits(seed: int, count: int) -> list[tuple[bytes, bytes]]:
    """Pairs of JSON documents (with non-ASCII text) where the second edits the first."""
    rnd = random.Random(seed)
    words = ["bid", "ask", "café", "☕", "naïve", "x" * 20, "日本"]
    pairs = []
    for _ in range(count):
        doc = {f"k{i}": rnd.choice(words) + str(rnd.randint(0, 99)) for i in range(rnd.randint(1, 40))}
        before = json.dumps(doc, ensure_ascii=False).encode()
        for key in rnd.sample(sorted(doc), min(len(doc), rnd.randint(1, 4))):
            doc[key] = rnd.choice(words) + str(rnd.randint(0, 999))
        pairs.append((before, json.dumps(doc, ensure_ascii=False).encode()))
    return pairs


@pytest.mark.interop
def test_centrifuge_js_decodes_deltas_of_json() -> None:
    """centrifuge-js's JSON codec (``applyDeltaIfNeeded``) takes a delta as the JSON string
    wavecast sends; a delta that isn't UTF-8 is never sent as one (the full data goes)."""
    cases = []
    for before, after in json_edits(2, 300):
        delta = fossil.create(before, after)
        if _utf8(delta):
            cases.append({"source": before.decode(), "delta": delta.decode(), "target": json.loads(after)})
    script = """
    const { Centrifuge } = require("centrifuge");
    const codec = new Centrifuge("ws://127.0.0.1:1", { websocket: class {} })._codec;
    const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const out = cases.map(({ source, delta }) =>
      codec.applyDeltaIfNeeded({ delta: true, data: delta }, new TextEncoder().encode(source)).newData
    );
    process.stdout.write(JSON.stringify(out));
    """
    result = subprocess.run(
        [node("centrifuge"), "-e", script],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert len(cases) > 200
    assert json.loads(result.stdout) == [case["target"] for case in cases]


def test_centrifuge_python_decodes_deltas_of_json() -> None:
    for before, after in json_edits(3, 300):
        assert apply_delta(before, fossil.create(before, after)) == after


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
