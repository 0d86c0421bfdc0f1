"""Export: ONNX (ultralytics metadata kept), onnxsim-simplified when outputs match."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.io import staging_dir
from yeo.optimize.export import MODEL_FILE, export_variant
from yeo.optimize.model import ExportSummary
from yeo.optimize.settings import OptimizeConfig
from yeo.tracking import log_step


@step(enable_cache=False)
def export_model(
    model_dir: Path, dataset: Path, imgsz: int, optimize: OptimizeConfig, variant: str
) -> tuple[Annotated[Path, "onnx_dir"], Annotated[ExportSummary, "export_summary"]]:
    """Export ``model_dir/best.pt`` to ``<dir>/model.onnx``; check it on 4 val images."""

    folder = staging_dir(variant)
    res = export_variant(Path(model_dir) / "best.pt", folder / MODEL_FILE, imgsz, optimize, dataset)
    summary = ExportSummary(
        variant=variant,
        simplified=res.simplified,
        max_abs_diff=res.max_abs_diff,
        opset=res.opset,
        size_bytes=res.size_bytes,
    )
    log_step(
        f"export_{variant}",
        dicts={f"export/{variant}.json": summary.model_dump()},
        metadata=summary.model_dump(),
    )
    return folder, summary
