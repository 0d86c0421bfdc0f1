"""Weights-only INT8: every Conv's weights stored as int8, activations in float (OpenVINO)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.optimize.export import MODEL_FILE
from yeo.optimize.quantize import WEIGHTS_ONLY, quantize_weights
from yeo.tracking import log_step


@step(enable_cache=False)
def weights_int8(onnx_dir: Path, variant: str) -> Annotated[Path, "w8_dir"]:
    """``onnx_dir/model.onnx`` with int8 Conv weights (:func:`quantize_weights`), alone in a
    new folder."""
    src = Path(onnx_dir) / MODEL_FILE
    folder = Path(tempfile.mkdtemp(prefix=f"yeo-{variant}-w8-"))
    out = quantize_weights(src, folder / MODEL_FILE)
    sizes = {"size_bytes": out.stat().st_size, "fp32_size_bytes": src.stat().st_size}
    log_step(
        f"weights_int8_{variant}",
        params={f"w8_{variant}.recipe": WEIGHTS_ONLY["name"]},
        metrics={f"w8_{variant}/{k}": v for k, v in sizes.items()},
        metadata=sizes,
    )
    return folder
