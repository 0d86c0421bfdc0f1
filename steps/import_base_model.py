"""Import: a base model given as a .pt path or an MLflow model URI, instead of training."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.io import staging_dir
from yeo.registry import resolve_weights
from yeo.tracking import step_metadata


@step(enable_cache=False)
def import_base_model(uri: str) -> Annotated[Path, "weights_dir"]:
    """Resolve ``uri`` to a weights file; return a folder holding it as ``best.pt``."""
    weights = resolve_weights(uri)
    folder = staging_dir("base")
    shutil.copy(weights, folder / "best.pt")
    step_metadata({"base_model": uri, "resolved": str(weights)})
    return folder
