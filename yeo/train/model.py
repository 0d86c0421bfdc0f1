"""Typed records of the train pipeline (pydantic, stored by ZenML)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TrainSummary(BaseModel):
    weights: str  # best.pt in the workspace (outputs/train/<run>/weights/best.pt)
    save_dir: str
    epochs_run: int
    seconds: float
    seconds_per_epoch: float
    history: list[dict[str, float]] = Field(default_factory=list)
    mlflow_run_id: str | None = None
    data_dvc_hash: str | None = None
    imgsz: int


class RegisteredModel(BaseModel):
    name: str
    version: str
    uri: str  # models:/NAME/VERSION
    weights: str
