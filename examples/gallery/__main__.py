from __future__ import annotations

from ..kit import main
from . import DEMOS, index

main(DEMOS, index=index)
