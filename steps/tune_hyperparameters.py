"""Tune: an Optuna study over the training recipe, trials as nested MLflow runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.data.model import DataVersion
from yeo.env import workspace
from yeo.tracking import mlflow_run, step_metadata
from yeo.train.config import ModelConfig, TrainConfig
from yeo.tune import TuneResult, run_study
from yeo.tune_config import TuneConfig


@step(enable_cache=False)
def tune_hyperparameters(
    data_version: DataVersion,
    dataset: Path,
    train: TrainConfig,
    model: ModelConfig,
    tune: TuneConfig,
) -> Annotated[TuneResult, "tune_result"]:
    """Run or resume the study; write ``conf/train/tuned.yaml``; log plots to MLflow."""
    import mlflow

    ws = workspace()
    cfg = tune
    name = cfg.study or f"tune-{data_version.name}"
    out = ws.outputs / "tune" / name
    with mlflow_run("tune"):
        mlflow.log_params({f"tune.{k}": v for k, v in tune.model_dump(exclude={"space"}).items()})
        mlflow.log_dict(cfg.space, "tune/space.json")
        result = run_study(
            Path(dataset) / "data.yaml",
            train,
            model,
            cfg,
            name,
            ws.state / "optuna",
            out / "runs",
            ws.root / "conf" / "train" / "tuned.yaml",
            out / "plots",
        )
        mlflow.log_metric("tune/best_mAP50-95", result.best_value)
        mlflow.log_params({f"tuned.{k}": v for k, v in result.best_params.items()})
        mlflow.log_artifact(result.config_file, "tune")
        for plot in result.plots:
            mlflow.log_artifact(plot, "tune/plots")
    step_metadata({"best_value": result.best_value, "best_params": result.best_params})
    return result
