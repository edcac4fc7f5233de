"""Save versions: what Kedro receives as its run id.

Kedro uses the run id as the save version of every versioned dataset and finds
"latest" by sorting version directory names as text. So each save version is in
Kedro's timestamp format (``2026-11-22T05.10.31.476Z``), unique across the whole
service and strictly increasing in submission order, even when two runs are
submitted in the same millisecond: the clock then moves one millisecond ahead.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

_FORMAT = "%Y-%m-%dT%H.%M.%S.%f"
_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{3}Z")


def is_save_version(text: str) -> bool:
    """Whether ``text`` has the shape of a save version (never a run's uuid)."""
    return _SHAPE.fullmatch(text) is not None


def format_save_version(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime(_FORMAT)
    return text[:-3] + "Z"  # milliseconds, as kedro.io.core.generate_timestamp


def parse_save_version(text: str) -> datetime:
    return datetime.strptime(text[:-1] + "000", _FORMAT).replace(tzinfo=UTC)


class SaveVersionClock:
    """Issues save versions; thread-safe. Seed it with the newest version ever issued."""

    def __init__(self, last_issued: str | None = None) -> None:
        self._last = parse_save_version(last_issued) if last_issued else None
        self._lock = threading.Lock()

    def next(self, now: datetime | None = None) -> str:
        """The next save version: ``now`` to the millisecond, or 1 ms after the last one."""
        moment = _to_millisecond(now or datetime.now(UTC))
        with self._lock:
            if self._last is not None and moment <= self._last:
                moment = self._last + timedelta(milliseconds=1)
            self._last = moment
        return format_save_version(moment)


def _to_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
