"""A user's own reader: ``data.reader=package.module:function``, called on ``data.path``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yeo.data.model import SourceDataset
from yeo.errors import ReaderError


def load_reader(spec: str) -> Callable[[Path], Any]:
    """``package.module:function`` -> the function (the working directory is importable, as
    for ``python -m``); anything wrong is a :class:`ReaderError` naming the reader."""
    module, _, func = spec.partition(":")
    if not module or not func:
        raise ReaderError(f"data.reader {spec!r}: expected 'package.module:function'")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        fn = getattr(importlib.import_module(module), func)
    except Exception as e:  # ImportError, AttributeError, or the module's own import error
        raise ReaderError(f"data.reader {spec}: cannot import: {type(e).__name__}: {e}") from None
    if not callable(fn):
        raise ReaderError(f"data.reader {spec}: {func} is not a function")
    return fn


def read_custom(name: str, root: Path, spec: str) -> SourceDataset:
    """Call a user's reader on ``data.path``: it returns a :class:`SourceDataset` (or the same
    as a dict); validation, ETL, DVC and everything downstream then run unchanged."""
    fn = load_reader(spec)
    try:
        out = fn(root)
    except Exception as e:  # the user's code: any failure is one line naming it
        raise ReaderError(f"data.reader {spec} raised {type(e).__name__}: {e}") from None
    try:
        ds = SourceDataset.model_validate(out if isinstance(out, dict) else out.model_dump())
    except (AttributeError, ValueError) as e:
        first = " ".join(str(e).split())[:200]
        raise ReaderError(
            f"data.reader {spec} returned {type(out).__name__}, not a SourceDataset: {first}"
        ) from None
    if not ds.names:
        raise ReaderError(f"data.reader {spec}: the SourceDataset has no class names")
    return ds.model_copy(update={"name": name})
