"""Train: YOLOv8n on the processed dataset, tracked in MLflow epoch by epoch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.data.model import DataVersion
from yeo.env import is_offline, workspace
from yeo.tracking import mlflow_run, run_name, step_metadata
from yeo.train import tracking, trainer
from yeo.train.config import ModelConfig, TrainConfig
from yeo.train.model import TrainSummary


def enable_wandb() -> None:
    """Turn on ultralytics' W&B callback (offline mode without network)."""
    from yeo.env import configure_ultralytics

    configure_ultralytics()
    from ultralytics.utils import SETTINGS

    if is_offline():
        os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_DIR", str(workspace().state / "wandb"))
    SETTINGS.update({"wandb": True})


@step(enable_cache=False)
def train_model(
    data_version: DataVersion,
    dataset: Path,
    train: TrainConfig,
    model: ModelConfig,
    wandb: bool = False,
) -> tuple[Annotated[TrainSummary, "train_summary"], Annotated[Path, "weights_dir"]]:
    """Train, log params/epochs/weights to MLflow; return the summary and the weights folder."""
    cfg, model_cfg = train, model
    ws = workspace()
    save_dir = ws.outputs / "train" / run_name()
    if wandb:
        enable_wandb()
    with mlflow_run("train") as run:
        tracking.log_params(cfg, {f"model.{k}": v for k, v in model.model_dump().items()})
        outcome = trainer.train(
            Path(dataset) / "data.yaml",
            cfg,
            model_cfg,
            save_dir,
            on_epoch_end=[tracking.log_epoch()],
        )
        tracking.log_outputs(save_dir)
    per_epoch = sum(outcome.epoch_seconds) / max(len(outcome.epoch_seconds), 1)
    summary = TrainSummary(
        weights=ws.relative(outcome.best),
        save_dir=ws.relative(save_dir),
        epochs_run=outcome.epochs_run,
        seconds=outcome.seconds,
        seconds_per_epoch=per_epoch,
        history=outcome.history,
        mlflow_run_id=run.info.run_id,
        data_dvc_hash=data_version.dvc_hash,
        imgsz=cfg.imgsz,
    )
    step_metadata(
        {"epochs": outcome.epochs_run, "seconds_per_epoch": per_epoch, "weights": summary.weights}
    )
    return summary, outcome.best.parent
