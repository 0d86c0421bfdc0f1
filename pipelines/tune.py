"""``--pipeline tune``: data (cached) -> Optuna study -> tuned train config."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from pipelines.train import prepared_data
from steps.tune_hyperparameters import tune_hyperparameters
from yeo.tracking import mark_failed


@pipeline(enable_cache=False, on_failure=mark_failed)
def tune_pipeline(
    data: dict[str, Any], train: dict[str, Any], model: dict[str, Any], tune: dict[str, Any]
) -> Any:
    """Search the training recipe; the best becomes ``train=tuned``."""
    data_version, dataset = prepared_data(data)
    return tune_hyperparameters(data_version, dataset, train, model, tune)
