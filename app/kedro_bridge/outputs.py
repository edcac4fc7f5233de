"""Describing what a run wrote (datasets saved) and returned (free outputs), in the
worker, as plain values the service can store."""

from __future__ import annotations

import json
from typing import Any

from app.domain.redaction import mask_data, redact


def _type_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_saved(catalog: Any, names: list[str], save_version: str) -> list[dict[str, object]]:
    """One entry per dataset the run saved: name, type, whether versioned (and then the
    run's save version), and its file path with credentials redacted."""
    described: list[dict[str, object]] = []
    for name in names:
        try:
            dataset = catalog.get(name)
        except Exception:  # a dataset the catalog cannot describe is still listed
            dataset = None
        versioned = getattr(dataset, "_version", None) is not None
        filepath = getattr(dataset, "_filepath", None)
        described.append(
            {
                "name": name,
                "type": _type_name(dataset) if dataset is not None else None,
                "versioned": versioned,
                "save_version": save_version if versioned else None,
                "filepath": redact(str(filepath)) if filepath else None,
            }
        )
    return described


def describe_free(run_result: dict[str, Any], max_inline_bytes: int) -> list[dict[str, object]]:
    """One entry per free output of the run (what ``session.run`` returns): in-memory
    values inline as JSON when they are JSON-serialisable and at most
    ``max_inline_bytes`` (known secrets masked, and ``masked`` says where); otherwise
    their type and, where they have one, shape or length.
    Persisted outputs are described by their dataset, never loaded."""
    described: list[dict[str, object]] = []
    for name, dataset in sorted(run_result.items()):
        entry: dict[str, object] = {"name": name}
        if type(dataset).__name__ != "MemoryDataset":
            entry.update(type=_type_name(dataset), inline=False)
            described.append(entry)
            continue
        value = dataset.load()
        entry["type"] = _type_name(value)
        inline = _as_small_json(value, max_inline_bytes)
        if inline is not None:
            # Data: only known secrets are masked (never what merely looks like one).
            value, masked = mask_data(json.loads(inline))
            entry.update(inline=True, value=value, masked=masked)
        else:
            entry["inline"] = False
            shape = getattr(value, "shape", None)
            if shape is not None:
                entry["shape"] = [int(n) for n in shape]
            elif hasattr(value, "__len__"):
                entry["length"] = len(value)
        described.append(entry)
    return described


def _as_small_json(value: object, max_bytes: int) -> str | None:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if len(text.encode()) <= max_bytes else None
