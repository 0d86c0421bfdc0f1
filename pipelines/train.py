"""``--pipeline train``: data (cached) -> train -> evaluate -> register."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from pipelines.data import data_steps
from steps.evaluate import evaluate_model
from steps.register_model import register_model
from steps.train_model import train_model
from yeo.data.settings import DataConfig
from yeo.evaluation import EvalConfig
from yeo.io import remove_staging
from yeo.tracking import mark_failed
from yeo.train.config import ModelConfig, TrainConfig


@pipeline(enable_cache=False, on_failure=mark_failed, on_cleanup=remove_staging)
def prepared_data(data: DataConfig) -> Any:
    """The data pipeline's steps with ZenML's cache on: unchanged config and raw files (their
    fingerprint, taken when the pipeline is compiled), no rework."""
    return data_steps(data, cached=True)


@pipeline(enable_cache=False, on_failure=mark_failed, on_cleanup=remove_staging)
def train_pipeline(
    data: DataConfig,
    train: TrainConfig,
    model: ModelConfig,
    eval_cfg: EvalConfig,
    registry_name: str,
    wandb: bool = False,
) -> Any:
    """Train YOLOv8n on the processed dataset, evaluate it, register it in MLflow."""
    data_version, dataset = prepared_data(data)
    summary, weights_dir = train_model(data_version, dataset, train, model, wandb)
    result = evaluate_model(weights_dir, dataset, eval_cfg, train.imgsz, device=train.device)
    return register_model(summary, weights_dir, result, registry_name)
