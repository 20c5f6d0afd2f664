"""Fuzz the configuration loader of ``wavecast serve``: ``python fuzzing/fuzz_config.py [-runs=N]``.

An input is a configuration file's bytes, then optionally a NUL byte and environment variables,
one ``NAME=value`` a line (``WAVECAST_`` is put before each name). ``load_config`` reads the
file as ``wavecast serve --config`` does and either returns a configuration or raises
``ConfigError``, whose message is what the command prints; nothing else may escape. A
configuration it returns gives its node's configuration and a worker's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from harness import fuzz

from wavecast.exceptions import ConfigError
from wavecast.server.config import ENV_PREFIX, Config, load_config

# A file in memory where there is a tmpfs: the loader reads a path, and an input is written per run.
FOLDER = Path(tempfile.mkdtemp(prefix="wavecast-fuzz-config-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
FILE = FOLDER / "wavecast.toml"
atexit.register(shutil.rmtree, FOLDER, ignore_errors=True)


def parse_input(data: bytes) -> tuple[bytes, dict[str, str]]:
    """Split an input into the file's bytes and the environment."""
    text, _, env_lines = data.partition(b"\x00")
    environ: dict[str, str] = {}
    # os.environ holds what isn't UTF-8 as lone surrogates, and so does this.
    for line in env_lines.decode("utf-8", "surrogateescape").splitlines():
        name, equals, value = line.partition("=")
        if equals:
            environ[ENV_PREFIX + name] = value
    return text, environ


def test_one_input(data: bytes) -> None:
    text, environ = parse_input(data)
    FILE.write_bytes(text)
    try:
        config = load_config(FILE, environ)
    except ConfigError as exc:
        assert str(exc), "a ConfigError without a message"
        return
    assert isinstance(config, Config)
    # Secrets are compared as UTF-8 bytes on every request that carries one.
    config.http_api.key.encode()
    config.admin.password.encode()
    config.node_config()
    config.worker(1)


if __name__ == "__main__":
    fuzz(test_one_input)
