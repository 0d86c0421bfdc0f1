"""Quantize: INT8 QDQ with onnxruntime, next recipe until the accuracy budget holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from edge.latency import measure
from yeo.evaluation import EvalConfig, evaluate
from yeo.io import staging_dir
from yeo.optimize.dataset import split_images
from yeo.optimize.export import MODEL_FILE
from yeo.optimize.int8_search import Int8Search, int8_into_folder
from yeo.optimize.model import QuantSummary
from yeo.optimize.quantize import calibration_images
from yeo.optimize.settings import OptimizeConfig
from yeo.tracking import log_step


@step(enable_cache=False)
def quantize_int8(
    onnx_dir: Path,
    dataset: Path,
    eval_cfg: EvalConfig,
    imgsz: int,
    optimize: OptimizeConfig,
    variant: str,
) -> tuple[Annotated[Path, "int8_dir"], Annotated[QuantSummary, "quant_summary"]]:
    """Calibrate on train images only; every trial (recipe, mAP, latency) goes to MLflow."""

    quant = optimize.quant
    fp32 = Path(onnx_dir) / MODEL_FILE
    data_yaml = Path(dataset) / "data.yaml"
    ev = eval_cfg.settings(imgsz, "cpu")

    def score(path: Path) -> float:
        return evaluate(path, data_yaml, ev).map50_95

    def latency(path: Path) -> float:  # as many timed runs as the interleaved timing gives each
        lat = optimize.latency
        return measure(path, optimize.threads, lat.warmup, lat.rounds * lat.runs, 0).p50_ms

    images = calibration_images(
        split_images(Path(dataset), "train"), quant.calib_images, quant.seed
    )
    search = Int8Search(
        quant.recipe_list(), images, imgsz, score, latency, quant.max_map_drop, quant.backend
    )
    out = staging_dir(f"{variant}-int8")
    trials, recipe = int8_into_folder(fp32, out / MODEL_FILE, search)
    summary = QuantSummary(
        variant=variant,
        chosen=recipe,
        passed=any(t.passed for t in trials),
        trials=[{k: v for k, v in vars(t).items() if k != "path"} for t in trials],  # a temp file
    )
    log_step(
        f"quantize_{variant}",
        series=[
            {f"int8_{variant}/trial_mAP50-95": t.map50_95, f"int8_{variant}/trial_p50_ms": t.p50_ms}
            for t in trials
        ],
        dicts={f"quantize/{variant}.json": summary.model_dump()},
        metadata={"chosen": summary.chosen, "passed": summary.passed, "trials": len(trials)},
    )
    return out, summary
