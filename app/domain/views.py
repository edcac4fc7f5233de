"""What the service answers with: runs with their derived progress, pages, cursors."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from app.domain.runs import NodeProgress, Run
from app.domain.save_versions import parse_save_version
from app.errors import FieldError, InvalidRequest


@dataclass(frozen=True)
class RunView:
    """A run with what is derived from its events and from the dispatch queue."""

    run: Run
    nodes: list[NodeProgress]
    waiting_for: list[str]

    @property
    def nodes_done(self) -> int:
        return sum(1 for node in self.nodes if node.status == "completed")


@dataclass(frozen=True)
class RunListPage:
    runs: list[RunView]
    next_cursor: str | None


def encode_cursor(save_version: str) -> str:
    return base64.urlsafe_b64encode(save_version.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        save_version = base64.urlsafe_b64decode(padded.encode()).decode()
        parse_save_version(save_version)
        return save_version
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidRequest(
            "The cursor is not one this service issued.",
            [FieldError(("query", "cursor"), "not a cursor from a previous page")],
        ) from error
