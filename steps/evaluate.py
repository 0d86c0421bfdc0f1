"""Evaluate: the one evaluator for every variant (``evaluate`` is the plain function)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from zenml import step

from yeo.evaluation import EvalResult, EvalSettings, evaluate
from yeo.tracking import mlflow_run, step_metadata
from yeo.train.config import resolve_device

__all__ = ["EvalResult", "EvalSettings", "evaluate", "evaluate_model", "settings_from_config"]


def settings_from_config(
    eval_cfg: dict[str, Any], imgsz: int, device: str = "auto"
) -> EvalSettings:
    return EvalSettings(imgsz=imgsz, device=resolve_device(device), **eval_cfg)


@step(enable_cache=False)
def evaluate_model(
    model_dir: Path,
    dataset: Path,
    eval_cfg: dict[str, Any],
    imgsz: int,
    filename: str = "best.pt",
    variant: str = "base",
    device: str = "auto",
) -> Annotated[EvalResult, "eval_result"]:
    """Score ``model_dir/filename`` on the val split; MLflow metrics are ``<variant>/...``.

    Models travel between steps as folders (ZenML's Path materializer keeps folder contents,
    and the artifact store makes them reachable on remote stacks too).
    """
    import mlflow

    result = evaluate(
        Path(model_dir) / filename,
        Path(dataset) / "data.yaml",
        settings_from_config(eval_cfg, imgsz, device),
    )
    with mlflow_run(f"evaluate_{variant}"):
        mlflow.log_metrics(result.metrics(f"{variant}/"))
        mlflow.log_dict(result.model_dump(), f"eval/{variant}.json")
    step_metadata({"variant": variant, "mAP50": result.map50, "mAP50-95": result.map50_95})
    return result
