"""The bundle's ``metadata.json``: read it, and check the fields the runtime relies on.

Checked once where it is read, so that a hand-edited or truncated file gives one line naming
the field, never a ``KeyError`` deep in the runtime. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetadataError(ValueError):
    """``metadata.json`` is unreadable or lacks a field the runtime needs."""

    @classmethod
    def check(cls, meta: Any, where: str | Path) -> dict[str, Any]:
        """``meta`` if it passes :func:`check_metadata_doc`; else raise naming the first fault."""
        faults = check_metadata_doc(meta)
        if faults:
            raise cls(f"{where}/{faults[0]}")
        return meta


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def check_metadata_doc(meta: Any) -> list[str]:
    """Faults of a parsed ``metadata.json``, each ``"metadata.json: <field> ..."``."""

    def fault(text: str) -> list[str]:
        return [f"metadata.json: {text}"]

    if not isinstance(meta, dict):
        return fault(f"expected an object, got {type(meta).__name__}")
    for key in ("name", "version", "precision"):
        if not isinstance(meta.get(key), str):
            return fault(f"{key} must be a string, got {meta.get(key)!r}")
    classes = meta.get("classes")
    if not isinstance(classes, dict) or not classes:
        return fault("classes must be a non-empty {id: name} object")
    try:
        ids = sorted(int(k) for k in classes)
    except (TypeError, ValueError):
        return fault(f"classes ids must be integers, got {sorted(map(str, classes))[:5]}")
    if ids != list(range(len(ids))) or len(set(classes)) != len(ids):
        return fault(f"classes ids must be 0..n-1, got {ids}")
    if not all(isinstance(v, str) for v in classes.values()):
        return fault("classes names must be strings")
    th = meta.get("thresholds")
    if not isinstance(th, dict):
        return fault("thresholds must be an object with conf and iou")
    if not (_number(th.get("conf")) and 0 <= th["conf"] <= 1):
        return fault(f"thresholds.conf must be a number in [0, 1], got {th.get('conf')!r}")
    if not (_number(th.get("iou")) and 0 < th["iou"] <= 1):
        return fault(f"thresholds.iou must be a number in (0, 1], got {th.get('iou')!r}")
    runtime = meta.get("runtime", {})
    if not isinstance(runtime, dict) or runtime.get("backend", "onnxruntime") not in (
        "onnxruntime",
        "openvino",
    ):
        return fault(f"runtime.backend must be onnxruntime or openvino, got {runtime!r}")
    if "input" in meta:
        shape = meta["input"].get("shape") if isinstance(meta["input"], dict) else None
        ok = isinstance(shape, list) and len(shape) == 4
        if not ok or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            return fault(f"input.shape must be 4 positive integers (NCHW), got {shape!r}")
    return []


def read_metadata(bundle: Path) -> dict[str, Any]:
    """The checked ``metadata.json`` of a bundle directory (:class:`MetadataError` if bad)."""
    path = Path(bundle) / "metadata.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetadataError(f"{path}: unreadable ({' '.join(str(e).split())})") from None
    return MetadataError.check(meta, bundle)
