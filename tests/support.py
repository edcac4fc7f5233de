"""Plain helpers shared by the tests and the benchmark (no pytest imports)."""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

PROJECT_TEMPLATE = Path(__file__).parent / "project"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_project(destination: Path) -> Path:
    """A fresh copy of the test Kedro project under ``destination``."""
    target = destination / "project"
    shutil.copytree(
        PROJECT_TEMPLATE,
        target,
        ignore=shutil.ignore_patterns("__pycache__", ".kedro-runs", "*.egg-info"),
    )
    return target


def process_group(pgid: int) -> dict[int, list[str]]:
    """The processes in process group ``pgid``: pid -> the /proc stat fields after the
    command name (field 0 is the state, 'Z' for a zombie). Empty without /proc."""
    members: dict[int, list[str]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            members[int(entry.name)] = fields
    return members


def counted(
    work: Callable[[], T], counts: Callable[[FrameType, str], bool], *, lines: bool = False
) -> tuple[T, int]:
    """What ``work`` returns, and how many profiler events (calls, C calls, returns) it
    made for which ``counts(frame, event)`` holds; with ``lines``, trace events instead
    (a loop's body then counts once per turn). Work measured in steps, not seconds."""
    seen = 0

    def observe(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal seen
        if counts(frame, event):
            seen += 1
        return observe if lines else None

    install: Callable[[Any], None] = sys.settrace if lines else sys.setprofile
    install(observe)
    try:
        result = work()
    finally:
        install(None)
    return result, seen
