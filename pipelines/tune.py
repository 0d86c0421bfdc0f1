"""``--pipeline tune``: data (cached) -> Optuna study -> tuned train config."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from pipelines.train import prepared_data
from steps.tune_hyperparameters import tune_hyperparameters
from yeo.data.settings import DataConfig
from yeo.io import remove_staging
from yeo.tracking import mark_failed
from yeo.train.config import ModelConfig, TrainConfig
from yeo.tune_config import TuneConfig


@pipeline(enable_cache=False, on_failure=mark_failed, on_cleanup=remove_staging)
def tune_pipeline(
    data: DataConfig, train: TrainConfig, model: ModelConfig, tune: TuneConfig
) -> Any:
    """Search the training recipe; the best becomes ``train=tuned``."""
    data_version, dataset = prepared_data(data)
    return tune_hyperparameters(data_version, dataset, train, model, tune)
