"""What the service answers with: runs with their derived progress, pages, cursors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.runs import NodeProgress, Run
from app.errors import FieldError, InvalidRequest

# A page cursor is the save version of the last run on the previous page. Save versions
# sort as text in submission order, so any string of this shape is a valid position (the
# runs that sort before it): the pattern says exactly which cursors are accepted.
CURSOR_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{3}Z$"
_CURSOR = re.compile(CURSOR_PATTERN.removeprefix("^").removesuffix("$"))


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
    return save_version


def decode_cursor(cursor: str) -> str:
    if _CURSOR.fullmatch(cursor) is None:
        raise InvalidRequest(
            "The cursor is not a save version (the `next` of a previous page).",
            [FieldError(("query", "cursor"), "not a cursor from a previous page")],
        )
    return cursor
