"""``--pipeline data``: ingest -> convert -> ETL -> validate -> version."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from steps import convert_annotations, etl_dataset, ingest_data, validate_dataset, version_dataset
from yeo.data.settings import DataConfig
from yeo.tracking import mark_failed


@pipeline(enable_cache=False, on_failure=mark_failed)
def data_pipeline(data: DataConfig) -> Any:
    """Build, validate and version the processed dataset named by the ``data`` config group."""
    raw = ingest_data(data)
    source = convert_annotations(raw)
    staged = etl_dataset(source, data)
    report, _ = validate_dataset(staged, data)
    return version_dataset(staged, report, raw, data)
