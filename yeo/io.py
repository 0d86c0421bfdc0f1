"""Small file helpers: atomic writes, so a failed run never leaves half-written output, and
staging folders for steps' folder artifacts, removed when the run ends."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from edge.fileio import atomic_dir, replace_dir, write_text

__all__ = [
    "atomic_dir",
    "atomic_write_text",
    "remove_staging",
    "replace_dir",
    "staging_dir",
    "write_json",
    "write_yaml",
]


atomic_write_text = write_text  # the edge tools' writer: temp file, then rename


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


_STAGED: list[Path] = []  # this process's staging folders, until the run's cleanup hook


def staging_dir(name: str) -> Path:
    """A new empty folder (``$TMPDIR/yeo-<name>-*``) for a folder a step returns: ZenML copies
    it into the artifact store only after the step returns, so the step cannot remove it;
    :func:`remove_staging` does, when the pipeline run ends."""
    folder = Path(tempfile.mkdtemp(prefix=f"yeo-{name}-"))
    _STAGED.append(folder)
    return folder


def remove_staging() -> None:
    """Remove the staging folders this process made (every pipeline's cleanup hook: ZenML runs
    it when the run ends, failed or not, or after each step where steps run apart, by which
    time each step's outputs are stored)."""
    while _STAGED:
        shutil.rmtree(_STAGED.pop(), ignore_errors=True)
