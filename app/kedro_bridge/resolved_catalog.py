"""A project's catalog resolved for one request: where each dataset lives, and the
footprint (what files) a filtered pipeline reads and writes through it, for
conflict-aware dispatch. Pure reading of configuration: never loads or saves data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from app.domain.runs import Footprint, RunPlan
from app.kedro_bridge import catalog_guard
from app.kedro_bridge.location_rules import local_key, split_protocol

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

_MEMORY_TYPES = ("MemoryDataset", "SharedMemoryDataset")
# What Kedro's catalog makes of a dataset no entry or pattern names: a MemoryDataset.
RUNTIME_PATTERNS = {"{default}": {"type": "kedro.io.MemoryDataset"}}


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset lives, as far as conflicts are concerned."""

    key: str | None  # None: in memory, touches nothing shared
    versioned: bool
    type: str | None


def guard_config(catalog: Mapping[str, Any], project_path: Path) -> dict[str, Any]:
    """A catalog config as the loader resolved it, as the guard and dispatch read it:
    local paths made absolute as Kedro's context does before it builds a catalog, and
    every ``credentials`` replaced by a digest (comparable; no secret in this copy)."""
    from kedro.framework.context.context import _convert_paths_to_absolute_posix

    config = _convert_paths_to_absolute_posix(project_path, dict(catalog))
    return {
        name: catalog_guard.hide_credentials(entry) if isinstance(entry, dict) else entry
        for name, entry in config.items()
    }


class ResolvedCatalog:
    """Resolved dataset locations, memoised per dataset name."""

    def __init__(self, config: dict[str, Any]) -> None:
        from kedro.io.catalog_config_resolver import CatalogConfigResolver

        self.config = config  # as resolved: absolute paths, credentials hidden
        self._resolver = CatalogConfigResolver(config, default_runtime_patterns=RUNTIME_PATTERNS)
        self._cache: dict[str, DatasetLocation] = {}
        self._resolved: dict[str, catalog_guard.ResolvedDataset] = {}

    def resolved(self, name: str) -> catalog_guard.ResolvedDataset:
        """Where dataset ``name`` lives as configured, and what chooses its behaviour."""
        if name not in self._resolved:
            if name == "parameters" or name.startswith("params:"):
                self._resolved[name] = catalog_guard.ResolvedDataset((), ())
            else:
                config = self._resolver.resolve_pattern(name)
                self._resolved[name] = catalog_guard.ResolvedDataset.of(config)
        return self._resolved[name]

    def locate(self, name: str) -> DatasetLocation:
        if name not in self._cache:
            self._cache[name] = self._locate(name)
        return self._cache[name]

    def _locate(self, name: str) -> DatasetLocation:
        if name == "parameters" or name.startswith("params:"):
            return DatasetLocation(None, False, None)
        config = self._resolver.resolve_pattern(name)
        type_name = str(config.get("type", ""))
        if not type_name or type_name.rsplit(".", 1)[-1] in _MEMORY_TYPES:
            return DatasetLocation(None, False, type_name or None)
        target = _target(config)
        key = normalise(str(target)) if target else f"dataset:{name}"
        return DatasetLocation(key, bool(config.get("versioned")), type_name)


# Where a dataset's own data lives, in the order a config is read for it: the location
# keys of catalog_guard.LOCATION_KEYS but ``temppath`` (a scratch copy, not the data).
_TARGET_KEYS = ("filepath", "path", "filename", "url", "from_url", "location")


def _target(config: dict[str, Any]) -> object:
    """The file, directory or URL a dataset config points at; wrappers (CachedDataset,
    PartitionedDataset, ...) may hold it in a nested ``dataset`` config."""
    target = next((config[key] for key in _TARGET_KEYS if config.get(key)), None)
    nested = config.get("dataset")
    if not target and isinstance(nested, dict):
        return _target(nested)
    return target


def normalise(target: str) -> str:
    """The key two runs touching the same location share: the guard's reading of the
    protocol, so every spelling of a local file is one key."""
    protocol, path = split_protocol(target)
    if protocol == "file":
        return local_key(path)
    # Keys are stored with the run: keep scheme, host and path, never credentials.
    parts = urlsplit(target)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def run_plan(filtered: Pipeline, catalog: ResolvedCatalog) -> RunPlan:
    """The nodes of ``filtered``, in order, and the files they touch."""
    return RunPlan(
        nodes=tuple(node.name for node in filtered.nodes),
        footprint=footprint(filtered, catalog),
    )


def footprint(pipeline: Pipeline, catalog: ResolvedCatalog) -> Footprint:
    """What the nodes of ``pipeline`` read and write through persisted datasets."""
    reads: set[str] = set()
    writes: set[str] = set()
    versioned_writes: set[str] = set()
    for node in pipeline.nodes:
        for name in node.inputs:
            location = catalog.locate(name)
            if location.key:
                reads.add(location.key)
        for name in node.outputs:
            location = catalog.locate(name)
            if location.key:
                (versioned_writes if location.versioned else writes).add(location.key)
    return Footprint(frozenset(reads), frozenset(writes), frozenset(versioned_writes))
