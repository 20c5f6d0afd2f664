"""Write spec/codes.json from src/wavecast/codes.py: ``python scripts/gen_codes.py [--check]``.

codes.py is the source of every code; this file is its language-neutral copy, for clients and
tools that don't read Python. ``--check`` exits 1 when the file is out of date, as
tests/test_codes.py does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from wavecast.codes import CLOSE_CODE_EXPLANATIONS, DISCONNECTS, ERRORS, OK_CLOSE_CODES, UNSUBSCRIBES

SPEC = Path(__file__).parents[1] / "spec" / "codes.json"


def codes() -> dict[str, Any]:
    """Return every code of codes.py as plain data."""
    return {
        "close_codes": [
            {"code": int(code), "name": code.name, "explanation": text, "ok": code in OK_CLOSE_CODES}
            for code, text in CLOSE_CODE_EXPLANATIONS.items()
        ],
        "errors": [{"code": e.code, "message": e.message, "temporary": e.temporary} for e in ERRORS],
        "disconnects": [{"code": d.code, "reason": d.reason, "reconnect": d.reconnect} for d in DISCONNECTS],
        "unsubscribes": [{"code": u.code, "reason": u.reason, "resubscribe": u.resubscribe} for u in UNSUBSCRIBES],
    }


def render() -> str:
    return json.dumps(codes(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not SPEC.exists() or SPEC.read_text() != text:
            print(f"{SPEC} is out of date: run python scripts/gen_codes.py", file=sys.stderr)
            return 1
        return 0
    SPEC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
