"""Small file helpers: atomic writes, so a failed run never leaves half-written output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from edge.fileio import atomic_dir, replace_dir, write_text

__all__ = ["atomic_dir", "atomic_write_text", "replace_dir", "write_json", "write_yaml"]


atomic_write_text = write_text  # the edge tools' writer: temp file, then rename


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
