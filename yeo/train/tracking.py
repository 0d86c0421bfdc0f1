"""MLflow logging for ultralytics training: params, per-epoch metrics, weights, results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yeo.train.config import TrainConfig
from yeo.train.trainer import epoch_metrics


def log_epoch(prefix: str = "") -> Any:
    """An ``on_fit_epoch_end`` callback logging the epoch's metrics at step=epoch."""
    import mlflow

    def callback(trainer: Any) -> None:
        values = epoch_metrics(trainer) | {"epoch_seconds": float(trainer.epoch_time or 0.0)}
        mlflow.log_metrics({f"{prefix}{k}": v for k, v in values.items()}, step=trainer.epoch + 1)

    return callback


def log_params(cfg: TrainConfig, extra: dict[str, Any], prefix: str = "train.") -> None:
    import mlflow

    params = {f"{prefix}{k}": v for k, v in cfg.model_dump().items()} | extra
    mlflow.log_params(params)


def log_outputs(save_dir: Path) -> None:
    """results.csv, args.yaml and the weights under ``train/`` in the run's artifacts."""
    import mlflow

    for name in ("results.csv", "args.yaml"):
        if (save_dir / name).is_file():
            mlflow.log_artifact(str(save_dir / name), "train")
    for name in ("best.pt", "last.pt"):
        if (save_dir / "weights" / name).is_file():
            mlflow.log_artifact(str(save_dir / "weights" / name), "train/weights")
