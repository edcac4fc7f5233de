"""Where a caller's params may point a dataset: the rules for one location.

A location is a ``filepath``, ``url`` or any other key that names where a dataset's
data lives (``catalog_guard.LOCATION_KEYS``). These functions judge one location that
params changed; ``catalog_guard`` decides which values are locations and compares the
caller's resolution with the project's own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MAX_PATH_CHARS = 4096
MAX_COMPONENT_CHARS = 255
# Encoded '/', '\' and '.': some filesystems decode them, which would turn a name into
# a traversal after the check.
_ENCODED = re.compile(r"%(?:2f|5c|2e)", re.IGNORECASE)
# fsspec globs a path with these (Kedro does, to find a versioned dataset's latest
# version), so a name chosen by params could match the files of another dataset.
_GLOB = re.compile(r"[*?\[\]{}]")


@dataclass(frozen=True)
class Policy:
    """Where params may move datasets: protocols (``file`` is local paths) and, for
    local paths, the data root."""

    data_root: str
    allowed_protocols: frozenset[str] = frozenset({"file"})

    @classmethod
    def of_project(
        cls, project_path: Path, data_root: Path | None, allowed_protocols: Iterable[str]
    ) -> Policy:
        """The policy of a project: its ``data`` directory unless ``data_root`` is set.
        The API process and every worker build theirs this one way."""
        return cls(
            os.path.normpath(data_root or project_path / "data"), frozenset(allowed_protocols)
        )


def location_problem(location: str, policy: Policy) -> tuple[str, str] | None:
    """Why params may not point a dataset at ``location``, as (code, reason); None if
    they may. Codes: ``bad_path``, ``protocol_not_allowed``, ``path_outside_data_root``."""
    if len(location) > MAX_PATH_CHARS:
        return "bad_path", f"a path longer than {MAX_PATH_CHARS} characters"
    if "\\" in location or _ENCODED.search(location) or "\x00" in location:
        return "bad_path", "backslashes, NUL and percent-encoded '/', '\\' or '.' are refused"
    protocol, path = split_protocol(location)
    if protocol not in policy.allowed_protocols:
        allowed = ", ".join(sorted(policy.allowed_protocols))
        return "protocol_not_allowed", f"protocol {protocol[:20]!r} is not one of {allowed}"
    if protocol != "file":
        # A remote path is globbed too (a versioned dataset's latest version); only an
        # http(s) URL's query and fragment, which nothing globs, may hold such characters.
        remote = urlsplit(location).path if protocol in {"http", "https"} else path
        if _GLOB.search(remote):
            return "bad_path", "glob characters (* ? [ ] { }) would match other files"
        return None
    if any(len(part) > MAX_COMPONENT_CHARS for part in path.split("/")):
        return "bad_path", f"a path component longer than {MAX_COMPONENT_CHARS} characters"
    if _GLOB.search(path):
        return "bad_path", "glob characters (* ? [ ] { }) would match other files"
    if not os.path.isabs(path):
        return "bad_path", "a relative path (the project's own local paths are absolute)"
    if not _is_under(path, policy.data_root):
        return "path_outside_data_root", "outside the project's data directory"
    return None


def placement_problem(
    name: str, location: str, default: str | None, protected: Mapping[str, tuple[str, ...]]
) -> tuple[str, str] | None:
    """Why dataset ``name`` may not be moved to the local ``location`` (already inside
    the data root) from its ``default`` one, as (code, reason); None if it may. Codes:
    ``path_outside_default_location``, ``path_overlaps_dataset``."""
    protocol, path = split_protocol(location)
    if protocol != "file":
        return _remote_placement_problem(protocol, path, default)
    if default is not None:
        default_protocol, default_path = split_protocol(default)
        # What the two resolutions share, character by character (a template may take
        # part of a name from params), holds all the template does not take from params
        # (and perhaps a little more, which only makes the rule stricter).
        fixed = os.path.commonprefix([default_path, path])  # noqa: RUF071
        if default_protocol == "file" and not _stays_under_prefix(path, fixed):
            why = "outside the part of its default location that params do not choose"
            return "path_outside_default_location", why
    real = local_key(path)
    for other in sorted(protected):
        for taken in protected[other]:
            # Its own default location is its own file: the same is fine, in or over not.
            if (real == taken and other != name) or _inside(real, taken) or _inside(taken, real):
                return "path_overlaps_dataset", f"onto the files of dataset {other!r}"
    return None


def _remote_placement_problem(
    protocol: str, rest: str, default: str | None
) -> tuple[str, str] | None:
    """A remote location params changed keeps the protocol and host (an object store's
    bucket) of the dataset's own remote default: the project's credentials for it go
    to that host only. A local or missing default may move to any host of an allowed
    protocol (the operator listed it)."""
    if default is None:
        return None
    default_protocol, default_rest = split_protocol(default)
    if default_protocol == "file":
        return None
    # Everything up to the first '/' (userinfo, host, port, and any '#' or '?' in it).
    if (protocol, rest.partition("/")[0]) != (default_protocol, default_rest.partition("/")[0]):
        why = "to another protocol or host than its default location's"
        return "path_outside_default_location", why
    return None


def split_protocol(location: str) -> tuple[str, str]:
    """(protocol, the rest) of a dataset location, as fsspec reads it: no ``://`` is a
    local path, and ``file``/``local`` (any case) are local too, so every spelling of one
    local file gives the same ``("file", path)``."""
    if "://" not in location:
        return "file", location
    protocol, _, rest = location.partition("://")
    protocol = protocol.lower()
    if protocol in {"file", "local"}:
        return "file", rest
    return protocol, rest


def local_key(path: str) -> str:
    """One name for a local file however it is spelled: absolute, normalised, with
    symlinks resolved (``//x`` and ``///x`` are ``/x``, as the kernel reads them)."""
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    return os.path.realpath(path)


def _is_under(path: str, root: str) -> bool:
    """Whether ``path`` is inside ``root`` once both are made absolute and every
    symlink on the way is resolved (a link under data/ may point anywhere)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return os.path.commonpath([real, real_root]) == real_root


def _stays_under_prefix(path: str, prefix: str) -> bool:
    """Whether ``path``, with ``..`` and symlinks resolved, still starts with
    ``prefix``: under its directory part, and its next component begins with the rest."""
    head, slash, partial = prefix.rpartition("/")
    if not slash:
        return True  # nothing fixed to stay under; the data root still holds
    root = os.path.realpath(head or "/")
    real = local_key(path)
    if real != root and not _inside(real, root):
        return False
    return not partial or os.path.relpath(real, root).startswith(partial)


def _inside(path: str, outer: str) -> bool:
    """Whether normalised ``path`` lies strictly inside normalised ``outer``."""
    return path.startswith(outer.rstrip("/") + "/")
