"""Build wavecast's optional C extensions with the standard toolchain.

``wavecast.protocol._speedups`` speeds up the sans-I/O core (masking, frames),
``wavecast.asyncio._speedups`` broadcasts to sockets, and ``wavecast.realtime._speedups`` the
fan-out of a channel's publications (through the asyncio one's corking API, src/wavecast/_native.h). The wheel gets them
when a C compiler and Python's headers are there; without them, or with
``WAVECAST_NO_EXTENSION=1``, the build goes on and the wheel is pure Python (wavecast then
runs its Python twins of the same code). ``WAVECAST_REQUIRE_EXTENSION=1``
turns a failed build into an error instead, for packagers who want the fast path or nothing.
An editable install (``pip install -e .``) builds the extensions next to their sources, and
``python hatch_build.py ROOT`` does the same for a copy of the sources at ROOT (the
benchmarks measure a commit's snapshot that way).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script (below), where only setuptools is needed
    BuildHookInterface = object

EXTENSIONS = {
    "wavecast.protocol._speedups": "src/wavecast/protocol/_speedups.c",
    "wavecast.asyncio._speedups": "src/wavecast/asyncio/_speedups.c",
    "wavecast.realtime._speedups": "src/wavecast/realtime/_speedups.c",
}
# -O3 lets the compiler vectorize the masking loop; the rest is what setuptools passes anyway.
EXTRA_COMPILE_ARGS = ["-O3", "-std=c99", "-Wall", "-Wno-unused-parameter"]


def build_extensions(root: Path, out_dir: Path) -> dict[str, Path]:
    """Compile the extensions into ``out_dir``; return each one's path inside the package."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extensions = [
        Extension(name, sources=[str(root / source)], extra_compile_args=EXTRA_COMPILE_ARGS)
        for name, source in EXTENSIONS.items()
    ]
    distribution = Distribution({"name": "wavecast", "ext_modules": extensions})
    command = build_ext(distribution)
    command.build_lib = str(out_dir)
    command.build_temp = str(out_dir / "temp")
    command.ensure_finalized()
    command.run()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    libraries = {}
    for name in EXTENSIONS:
        relative = Path(*name.split(".")[:-1], name.split(".")[-1] + suffix)
        libraries[relative.as_posix()] = out_dir / relative
    return libraries


class SpeedupsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("WAVECAST_NO_EXTENSION"):
            return
        root = Path(self.root)
        out_dir = self._out_dir = Path(tempfile.mkdtemp(prefix="wavecast-build-"))
        try:
            libraries = build_extensions(root, out_dir)
        except Exception as exc:  # a missing compiler or headers surface as several types
            if os.environ.get("WAVECAST_REQUIRE_EXTENSION"):
                raise
            print(f"wavecast: building the C extensions failed ({exc}); installing pure Python", file=sys.stderr)
            shutil.rmtree(out_dir, ignore_errors=True)
            return
        for relative, library in libraries.items():
            if version == "editable":
                # The editable wheel points at src/: the library must sit beside the sources.
                shutil.copy2(library, root / "src" / relative)
            else:
                build_data["force_include"][str(library)] = relative
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        out_dir = getattr(self, "_out_dir", None)
        if out_dir is not None:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent
    work = Path(tempfile.mkdtemp(prefix="wavecast-build-"))
    try:
        for relative, library in build_extensions(target, work).items():
            shutil.copy2(library, target / "src" / relative)
            print(f"built {target / 'src' / relative}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
