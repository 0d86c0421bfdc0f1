"""Evaluate: the one evaluator for every variant (``evaluate`` is the plain function)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.evaluation import EvalConfig, EvalResult, evaluate
from yeo.tracking import log_step


@step(enable_cache=False)
def evaluate_model(
    model_dir: Path,
    dataset: Path,
    eval_cfg: EvalConfig,
    imgsz: int,
    filename: str = "best.pt",
    variant: str = "base",
    device: str | int = "auto",
) -> Annotated[EvalResult, "eval_result"]:
    """Score ``model_dir/filename`` on the val split; MLflow metrics are ``<variant>/...``.

    Models travel between steps as folders (ZenML's Path materializer keeps folder contents,
    and the artifact store makes them reachable on remote stacks too).
    """

    result = evaluate(
        Path(model_dir) / filename,
        Path(dataset) / "data.yaml",
        eval_cfg.settings(imgsz, device),
    )
    log_step(
        f"evaluate_{variant}",
        metrics=result.metrics(f"{variant}/"),
        dicts={f"eval/{variant}.json": result.model_dump()},
        metadata={"variant": variant, "mAP50": result.map50, "mAP50-95": result.map50_95},
    )
    return result
