"""The secrets this process knows by value, masked exactly wherever they appear.

Each process learns them at start (the project's credentials, environment variables
named like secrets, the service's own keys) and, in a worker, for the run under way
(its params' secrets). Values shorter than :data:`MIN_SECRET_CHARS`, or all digits,
are not kept: masking every ``admin`` or ``8080`` would mangle ordinary text, and
such values protect little anyway. Each value is also masked in its URL-encoded and
JSON-escaped spellings.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

MIN_SECRET_CHARS = 6


def worth_masking(value: str) -> bool:
    return len(value) >= MIN_SECRET_CHARS and not value.isdigit()


def _spellings(value: str) -> set[str]:
    return {value, quote(value, safe=""), json.dumps(value)[1:-1]}


class KnownSecrets:
    """A set of secret values and one compiled alternation of them (longest first,
    so a secret that contains another is masked whole). Thread-safe: readers use the
    compiled pattern of the moment, which writers replace whole under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lasting: set[str] = set()
        self._run: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def remember(self, values: Iterable[str]) -> None:
        """Keep ``values`` for the life of the process."""
        with self._lock:
            self._lasting |= {value for value in values if worth_masking(value)}
            self._compile()

    @contextmanager
    def for_run(self, values: Iterable[str]) -> Iterator[None]:
        """Also mask ``values`` until the block ends (a worker runs one run at a time)."""
        run = frozenset(value for value in values if worth_masking(value))
        if not run:  # most runs: the pattern of the lasting values stands as it is
            yield
            return
        with self._lock:
            self._run = run
            self._compile()
        try:
            yield
        finally:
            with self._lock:
                self._run = frozenset()
                self._compile()

    def values(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._lasting | self._run)

    def pattern_for(self, extra: Iterable[str] = ()) -> re.Pattern[str] | None:
        """The pattern of the known values, plus ``extra`` ones (None: nothing known)."""
        extra = {value for value in extra if worth_masking(value)}
        if not extra:
            return self._pattern
        return _compile(self.values() | extra)

    @staticmethod
    def pattern_of(values: Iterable[str]) -> re.Pattern[str] | None:
        """The pattern of ``values`` alone, none of the known ones (None: no value)."""
        return _compile(value for value in values if worth_masking(value))

    def _compile(self) -> None:
        self._pattern = _compile(self._lasting | self._run)


def _compile(values: Iterable[str]) -> re.Pattern[str] | None:
    spellings = {spelling for value in values for spelling in _spellings(value)}
    if not spellings:
        return None
    ordered = sorted(spellings, key=lambda spelling: (-len(spelling), spelling))
    return re.compile("|".join(re.escape(spelling) for spelling in ordered))
