from __future__ import annotations

from ..kit import main
from .app import DEMO

main([DEMO])
