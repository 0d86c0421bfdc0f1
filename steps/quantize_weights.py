"""OpenVINO-only INT8 twins of an FP32 variant: int8 weights with float activations (``w8``),
or NNCF's INT8 for OpenVINO's CPU plugin (``nncf``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from zenml import step

from yeo.io import staging_dir
from yeo.optimize.dataset import split_images
from yeo.optimize.export import MODEL_FILE
from yeo.optimize.quantize import (
    NNCF_INT8,
    WEIGHTS_ONLY,
    calibration_images,
    quantize_nncf,
    quantize_weights,
)
from yeo.optimize.settings import QuantConfig
from yeo.tracking import log_step


@step(enable_cache=False)
def openvino_int8(
    onnx_dir: Path,
    variant: str,
    kind: Literal["w8", "nncf"],
    dataset: Path,
    imgsz: int,
    quant: QuantConfig,
) -> Annotated[Path, "ov_int8_dir"]:
    """``onnx_dir/model.onnx`` as ``kind``, alone in a new folder: ``w8`` (every Conv's
    weights int8, :func:`quantize_weights`) or ``nncf`` (:func:`quantize_nncf`, calibrated on
    the train images the run's other INT8 files use)."""
    src = Path(onnx_dir) / MODEL_FILE
    folder = staging_dir(f"{variant}-{kind}")
    if kind == "w8":
        out, recipe = quantize_weights(src, folder / MODEL_FILE), WEIGHTS_ONLY
    else:
        train = split_images(Path(dataset), "train")
        images = calibration_images(train, quant.calib_images, quant.seed)
        out, recipe = quantize_nncf(src, folder / MODEL_FILE, images, imgsz), NNCF_INT8
    sizes = {"size_bytes": out.stat().st_size, "fp32_size_bytes": src.stat().st_size}
    log_step(
        f"{kind}_int8_{variant}",
        params={f"{kind}_{variant}.recipe": recipe["name"]},
        metrics={f"{kind}_{variant}/{k}": v for k, v in sizes.items()},
        metadata=sizes,
    )
    return folder
