"""Inputs that crashed ``fuzzing/fuzz_config.py``, replayed through the target.

Each one is a configuration file's bytes, then optionally a NUL byte and ``NAME=value``
lines of environment variables (without their ``WAVECAST_`` prefix).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wavecast.exceptions import ConfigError
from wavecast.server.config import load_config

from .targets import load

CRASHES = {
    # Path.read_text() raised UnicodeDecodeError for a file that isn't UTF-8.
    "file-not-utf8": b'[http_api]\nkey = "\xff\xfe"\n',
    # tomllib recursed once per level: RecursionError for arrays nested a thousand deep.
    "arrays-nested-deep": b"a = " + b"[" * 2000,
    "inline-tables-nested-deep": b"a = " + b"{b=" * 1500,
    # ...and so did an environment variable's value, read as TOML.
    "environment-nested-deep": b"\x00SERVER__PORT=" + b"[" * 2000,
    # A lone surrogate (os.environ's way with bytes that aren't UTF-8) in a key passed the
    # loader, then failed every request that carried a key: the target encodes it.
    "environment-key-not-utf8": b'[http_api]\nkey = "k"\n\x00HTTP_API__KEY=\xff\xfe',
}


@pytest.mark.parametrize("data", CRASHES.values(), ids=CRASHES.keys())
def test_crash_input_runs_clean(data: bytes) -> None:
    load("config").test_one_input(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CRASHES["file-not-utf8"], r"wavecast\.toml: invalid TOML: not UTF-8 text \(line 2\)"),
        (CRASHES["arrays-nested-deep"], r"wavecast\.toml: arrays or tables nested too deep"),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, text: bytes, message: str) -> None:
    path = tmp_path / "wavecast.toml"
    path.write_bytes(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_a_folder_is_no_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="can't read it: Is a directory"):
        load_config(tmp_path, environ={})


def test_a_secret_must_be_utf8_text() -> None:
    with pytest.raises(ConfigError, match=r"http_api\.key: expected UTF-8 text"):
        load_config(None, environ={"WAVECAST_HTTP_API__KEY": "k\udcff"})
