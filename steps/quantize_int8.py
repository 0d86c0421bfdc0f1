"""Quantize: INT8 QDQ with onnxruntime, next recipe until the accuracy budget holds."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from zenml import step

from steps.evaluate import settings_from_config
from steps.export_onnx import MODEL_FILE
from yeo.evaluation import evaluate
from yeo.optimize import settings
from yeo.optimize.dataset import split_images
from yeo.optimize.model import QuantSummary
from yeo.optimize.quantize import calibration_images, int8_within_budget
from yeo.tracking import mlflow_run, step_metadata


@step(enable_cache=False)
def quantize_int8(
    onnx_dir: Path,
    dataset: Path,
    eval_cfg: dict[str, Any],
    imgsz: int,
    optimize: dict[str, Any],
    variant: str,
) -> tuple[Annotated[Path, "int8_dir"], Annotated[QuantSummary, "quant_summary"]]:
    """Calibrate on train images only; every trial (recipe, mAP, latency) goes to MLflow."""
    import mlflow

    quant = optimize["quant"]
    fp32 = Path(onnx_dir) / MODEL_FILE
    data_yaml = Path(dataset) / "data.yaml"
    ev = settings_from_config(eval_cfg, imgsz, "cpu")

    def score(path: Path) -> float:
        return evaluate(path, data_yaml, ev).map50_95

    def latency(path: Path) -> float:
        return settings.measure_latency(path, optimize).p50_ms

    images = calibration_images(
        split_images(Path(dataset), "train"), quant["calib_images"], quant["seed"]
    )
    work = Path(tempfile.mkdtemp(prefix=f"yeo-int8-{variant}-"))
    chosen, trials, _ = int8_within_budget(
        fp32,
        work,
        settings.recipes(optimize),
        images,
        imgsz,
        score,
        latency,
        quant["max_map_drop"],
        quant["backend"],
    )
    out = Path(tempfile.mkdtemp(prefix=f"yeo-{variant}-int8-"))
    shutil.copy(chosen, out / MODEL_FILE)
    shutil.rmtree(work, ignore_errors=True)
    recipe = next((t.recipe.get("name") for t in trials if t.path == str(chosen)), None)
    summary = QuantSummary(
        variant=variant,
        chosen=recipe or Path(chosen).stem,
        passed=any(t.passed for t in trials),
        trials=[{k: v for k, v in vars(t).items() if k != "path"} for t in trials],  # a temp file
    )
    with mlflow_run(f"quantize_{variant}"):
        for i, t in enumerate(trials):
            mlflow.log_metrics(
                {
                    f"int8_{variant}/trial_mAP50-95": t.map50_95,
                    f"int8_{variant}/trial_p50_ms": t.p50_ms,
                },
                step=i,
            )
        mlflow.log_dict(summary.model_dump(), f"quantize/{variant}.json")
    step_metadata({"chosen": summary.chosen, "passed": summary.passed, "trials": len(trials)})
    return out, summary
