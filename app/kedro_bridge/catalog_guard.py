"""What a caller's params may not do to the catalog.

The project author's catalog is trusted; caller params are data. When params change
how a dataset resolves, the service compares the result with the project's own
resolution (no params) and refuses a run whose params would

- change which class is built or how it behaves: the ``type`` at any nesting depth
  (wrappers such as ``PartitionedDataset`` and ``CachedDataset`` hold a nested
  ``dataset``, ``IncrementalDataset`` a ``checkpoint``: any nested mapping with a
  ``type`` is a dataset config of its own), ``backend``, ``file_format``,
  ``filename_suffix``, ``load_args.engine`` / ``save_args.engine``, ``fs_args`` or
  ``credentials``. Kedro 1.7's own guard only
  looks for ``runtime_params:`` in the raw ``type`` string, so an indirection such as
  ``type: ${_types.t}`` gets past it; comparing resolved values does not care how the
  value was reached;
- move a dataset (or a nested one) to a protocol outside ``allowed_protocols`` (local
  files only by default), or, for local files, outside the data root once symlinks are
  resolved, or to a relative path (Kedro makes the project's local paths absolute, so a
  relative one would resolve against whatever directory a process runs in);
- give a path Kedro or fsspec could read in more than one way: backslashes,
  percent-encoded separators or dots, over-long paths;
- move a local dataset out of the part of its default location that params do not
  choose (for ``data/tenants/${runtime_params:tenant}/out.csv``, ``data/tenants/``),
  once ``..`` and symlinks are resolved, or onto, into or over any other dataset's
  default location (a versioned dataset's is its directory of versions), or into or
  over its own;
- change any credentials (``config_reach.credentials_errors``): compared as digests,
  so no secret is kept or shown.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import FieldError

# Keys of a dataset config that choose a class or how it reads and writes. A caller's
# params may not change any of them, at any nesting depth.
BEHAVIOUR_KEYS = ("type", "backend", "file_format", "filename_suffix", "fs_args", "credentials")
LOCATION_KEYS = ("filepath", "path")
ENGINE_KEYS = ("load_args", "save_args")
MAX_PATH_CHARS = 4096
MAX_COMPONENT_CHARS = 255
# Encoded '/', '\' and '.': some filesystems decode them, which would turn a name into
# a traversal after the check.
_ENCODED = re.compile(r"%(?:2f|5c|2e)", re.IGNORECASE)


@dataclass(frozen=True)
class ResolvedDataset:
    """What the guard needs of one dataset as resolved: where and how it behaves."""

    # (dotted key, filepath or path as configured; absolute for local files), nested too
    locations: tuple[tuple[str, str], ...]
    behaviour: tuple[tuple[str, str], ...]  # (dotted key, JSON of the value)

    @classmethod
    def of(cls, config: dict[str, Any]) -> ResolvedDataset:
        return cls(locations(config), behaviour(config))


def _nested(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The dataset configs inside ``config`` (``dataset``, ``checkpoint``, ...): every
    mapping value with a ``type``."""
    return [(k, v) for k, v in config.items() if isinstance(v, dict) and "type" in v]


def behaviour(config: dict[str, Any], prefix: str = "") -> tuple[tuple[str, str], ...]:
    """The class-and-behaviour-choosing values of a dataset config, nested configs
    included, as sorted ``(dotted key, JSON)`` pairs."""
    found: list[tuple[str, str]] = []
    for key in BEHAVIOUR_KEYS:
        if key in config:
            found.append((prefix + key, _fingerprint(config[key])))
    for key in ENGINE_KEYS:
        args = config.get(key)
        if isinstance(args, dict) and "engine" in args:
            found.append((f"{prefix}{key}.engine", _fingerprint(args["engine"])))
    for key, nested in _nested(config):
        found.extend(behaviour(nested, f"{prefix}{key}."))
    shorthand = config.get("dataset")
    if shorthand is not None and not isinstance(shorthand, dict):
        found.append((prefix + "dataset", _fingerprint(shorthand)))  # a type shorthand
    return tuple(sorted(found))


def locations(config: dict[str, Any], prefix: str = "") -> tuple[tuple[str, str], ...]:
    """Every ``filepath`` and ``path`` of a dataset config, nested configs included, as
    sorted ``(dotted key, location)`` pairs."""
    found = [(prefix + key, str(config[key])) for key in LOCATION_KEYS if config.get(key)]
    for key, nested in _nested(config):
        found.extend(locations(nested, f"{prefix}{key}."))
    return tuple(sorted(found))


def hide_credentials(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every ``credentials`` value (at any depth) replaced by a digest:
    comparable, but no secret stays in this process's copy."""
    hidden: dict[str, Any] = {}
    for key, value in config.items():
        if key == "credentials":
            # A dict, not a string: Kedro would look a string up as a credentials name.
            hidden[key] = {"sha256": hashlib.sha256(_fingerprint(value).encode()).hexdigest()}
        elif isinstance(value, dict):
            hidden[key] = hide_credentials(value)
        else:
            hidden[key] = value
    return hidden


def _fingerprint(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Policy:
    """Where params may move datasets: protocols (``file`` is local paths) and, for
    local paths, the data root."""

    data_root: str
    allowed_protocols: frozenset[str] = frozenset({"file"})


def params_driven_errors(
    names: Iterable[str],
    resolve: Callable[[str], ResolvedDataset],
    resolve_default: Callable[[str], ResolvedDataset],
    policy: Policy,
    protected: Mapping[str, tuple[str, ...]] | None = None,
) -> list[FieldError]:
    """One FieldError per dataset of ``names`` whose resolution with the caller's params
    (``resolve(name) -> ResolvedDataset``) breaks a rule of this module when compared
    with the project's own (``resolve_default``). ``protected`` is what
    ``protected_locations`` gives for every dataset of the project."""
    errors = []
    for name in sorted(names):
        moved, usual = resolve(name), resolve_default(name)
        if moved.behaviour != usual.behaviour:
            changed = sorted({k for k, _ in set(moved.behaviour) ^ set(usual.behaviour)}, key=str)
            errors.append(
                _error(
                    f"params may not change the type or behaviour of dataset {name!r} "
                    f"({', '.join(changed[:5])})",
                    "type_selection",
                )
            )
            continue
        problem = _moved_location_problem(name, moved, usual, policy, protected or {})
        if problem:
            code, why = problem
            errors.append(_error(f"params may not move dataset {name!r} ({why})", code))
    return errors


def _moved_location_problem(
    name: str,
    moved: ResolvedDataset,
    usual: ResolvedDataset,
    policy: Policy,
    protected: Mapping[str, tuple[str, ...]],
) -> tuple[str, str] | None:
    defaults = dict(usual.locations)
    for key, location in sorted(set(moved.locations) - set(usual.locations)):
        problem = location_problem(location, policy) or placement_problem(
            name, location, defaults.get(key), protected
        )
        if problem:
            return problem
    return None


def placement_problem(
    name: str, location: str, default: str | None, protected: Mapping[str, tuple[str, ...]]
) -> tuple[str, str] | None:
    """Why dataset ``name`` may not be moved to the local ``location`` (already inside
    the data root) from its ``default`` one, as (code, reason); None if it may. Codes:
    ``path_outside_default_location``, ``path_overlaps_dataset``."""
    protocol, path = split_protocol(location)
    if protocol != "file":
        return None
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


def protected_locations(
    names: Iterable[str], resolve_default: Callable[[str], ResolvedDataset]
) -> dict[str, tuple[str, ...]]:
    """Every local default location of each dataset of ``names``, one name per file
    (``local_key``): where params may not move any other dataset."""
    protected: dict[str, tuple[str, ...]] = {}
    for name in names:
        split = (split_protocol(location) for _, location in resolve_default(name).locations)
        local = tuple(local_key(path) for protocol, path in split if protocol == "file")
        if local:
            protected[name] = local
    return protected


def project_dataset_names(config: Mapping[str, Any], pipelines: Iterable[Any]) -> set[str]:
    """Every dataset of a project: its catalog's entries (not its patterns) and every
    dataset a registered pipeline (``.datasets()``) names."""
    names = {name for name in config if "{" not in name}
    for registered in pipelines:
        names |= registered.datasets()
    return names


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
        return None
    if any(len(part) > MAX_COMPONENT_CHARS for part in path.split("/")):
        return "bad_path", f"a path component longer than {MAX_COMPONENT_CHARS} characters"
    if not os.path.isabs(path):
        return "bad_path", "a relative path (the project's own local paths are absolute)"
    if not _is_under(path, policy.data_root):
        return "path_outside_data_root", "outside the project's data directory"
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


def _error(message: str, code: str) -> FieldError:
    return FieldError(("body", "params"), message, code)
