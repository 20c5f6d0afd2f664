"""The ``wavecast`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .version import version

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wavecast", description="Real-time messaging server on WebSockets.")
    parser.add_argument("--version", action="version", version=f"wavecast {version}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serve the echo demo: a page at / and an echo endpoint at /echo")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        from .asyncio.runner import run
        from .demo import run_demo

        run(run_demo(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
