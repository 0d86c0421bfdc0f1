"""Ingest: locate, generate or download the raw files of the configured source."""

from __future__ import annotations

from typing import Annotated, Any

from zenml import step

from yeo.data import settings, sources
from yeo.data.model import RawSource
from yeo.env import is_offline, workspace
from yeo.tracking import mlflow_run


@step(enable_cache=False)
def ingest_data(data: dict[str, Any]) -> Annotated[RawSource, "raw_source"]:
    """Return where the raw dataset is; synthetic data is generated into ``data/raw/<name>``."""
    import mlflow

    raw = sources.ingest(settings.source_config(data), workspace().data / "raw", is_offline())
    with mlflow_run("ingest"):
        mlflow.log_params({f"data.{k}": v for k, v in _flat(data).items()})
        mlflow.set_tags({"data.source": raw.kind, "data.raw_root": raw.root})
    return raw


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, f"{key}.") if isinstance(v, dict) else {key: v})
    return out
