"""Register: the trained weights as a new version in the MLflow model registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.evaluation import EvalResult
from yeo.registry import log_and_register
from yeo.tracking import mlflow_run, step_metadata
from yeo.train.model import RegisteredModel, TrainSummary


@step(enable_cache=False)
def register_model(
    summary: TrainSummary, weights_dir: Path, result: EvalResult, name: str
) -> Annotated[RegisteredModel, "registered_model"]:
    """Log the weights as an MLflow pyfunc model and register a new version under ``name``."""
    tags = {
        "data_dvc_hash": summary.data_dvc_hash or "",
        "mAP50-95": f"{result.map50_95:.4f}",
        "mAP50": f"{result.map50:.4f}",
        "imgsz": str(summary.imgsz),
    }
    with mlflow_run("register"):
        version = log_and_register(Path(weights_dir) / "best.pt", name, tags)
    registered = RegisteredModel(
        name=name, version=version, uri=f"models:/{name}/{version}", weights=summary.weights
    )
    step_metadata({"registered_model": registered.uri})
    return registered
