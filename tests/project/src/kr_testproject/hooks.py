"""A project hook that appends one line per executed node to ``data/ledger.txt``.

The ledger counts real executions independently of the service's own store, so a
test can prove that a run executed once (or not at all).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

_LEDGER = Path(__file__).resolve().parents[2] / "data" / "ledger.txt"


class LedgerHooks:
    @hook_impl
    def before_node_run(self, node: Any, run_id: str) -> None:
        line = f"{run_id} {node.name}\n".encode()
        fd = os.open(_LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
