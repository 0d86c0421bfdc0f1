"""Score: one variant through the one evaluator on val (what chooses), plus its file size.

Latency is measured for all variants together, interleaved, in the select step."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

from zenml import step

from edge.engine import load
from yeo.env import workspace
from yeo.evaluation import EvalConfig, evaluate
from yeo.io import staging_dir
from yeo.optimize.export import cut_head, onnx_metadata
from yeo.optimize.variants import VariantScore
from yeo.tracking import log_step, run_name, save_folder


@step(enable_cache=False)
def score_variant(
    model_dir: Path,
    filename: str,
    dataset: Path,
    eval_cfg: EvalConfig,
    imgsz: int,
    name: str,
    device: str | int = "auto",
    head: str = "graph",
    backend: str = "onnxruntime",
) -> Annotated[VariantScore, "variant_score"]:
    """Evaluate ``model_dir/filename`` on the val split; ``head="raw"``: an ONNX model is cut
    at its head first and scored (and later timed and bundled) with the host decode;
    ``backend``: what runs an ONNX model (openvino: the ``_ov`` twin). The model travels on
    as an artifact of its own (``variant_<name>``), named in the score."""

    path = _keep(Path(model_dir) / filename, name, head)
    settings = eval_cfg.settings(imgsz, device)
    res = evaluate(path, Path(dataset) / "data.yaml", settings, backend)
    recipe = _quant_recipe(path)
    onnx = path.suffix == ".onnx"
    score = VariantScore(
        name=name,
        file=path.name,
        artifact=save_folder(path.parent, f"variant_{name}"),
        format=path.suffix.lstrip("."),
        precision=("w8" if recipe.get("weights_only") else "int8") if recipe else "fp32",
        pruned=name.startswith("pruned"),
        head=head if onnx else "graph",
        backend=backend if onnx else "torch",
        runs=load(path, backend, 1).runs if onnx and backend == "openvino" else None,
        imgsz=imgsz,
        map50=res.map50,
        map50_95=res.map50_95,
        precision_=res.precision,
        recall=res.recall,
        per_class_ap50_95=res.per_class_ap50_95,
        size_bytes=path.stat().st_size,
        recipe=recipe,
    )
    log_step(
        f"score_{name}",
        metrics=res.metrics(f"{name}/") | {f"{name}/size_bytes": score.size_bytes},
        metadata={"mAP50-95": res.map50_95, "size": score.size_bytes},
    )
    return score


def _keep(path: Path, name: str, head: str) -> Path:
    """The model as this variant (an ONNX model cut at its head when ``head`` is raw), alone
    in a new folder, the artifact to be; a copy goes into the run's ``variants/`` folder."""
    dest = staging_dir(name) / f"{name}{path.suffix}"
    if head == "raw" and path.suffix == ".onnx":
        cut_head(path, dest)
    else:
        shutil.copy(path, dest)
    local = workspace().outputs / "optimize" / run_name() / "variants"
    local.mkdir(parents=True, exist_ok=True)
    shutil.copy(dest, local / dest.name)
    return dest


def _quant_recipe(path: Path) -> dict[str, Any] | None:
    """The quantization recipe recorded in an INT8 model's metadata, if any."""
    return onnx_metadata(path)[0].get("quantization") if path.suffix == ".onnx" else None
