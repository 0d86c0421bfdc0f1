"""``--pipeline data``: ingest -> convert -> ETL -> validate -> version."""

from __future__ import annotations

from typing import Any

from zenml import pipeline
from zenml.config import CachePolicy

from steps import convert_annotations, etl_dataset, ingest_data, validate_dataset, version_dataset
from yeo.data.settings import DataConfig
from yeo.data.sources import fingerprint
from yeo.io import remove_staging
from yeo.tracking import mark_failed


def data_steps(data: DataConfig, cached: bool) -> Any:
    """The data steps, wired alike in every pipeline so that their cache keys match: ZenML's
    cache (``cached``: the train, tune and optimize pipelines) is keyed on the config and the
    raw files' fingerprint, so an edited dataset is read again and an unchanged one is not.
    ``version_dataset`` is keyed on what was staged, not on the raw record: a file the reader
    ignores (a new fingerprint, the same staged data) must not publish again a staging folder
    that an earlier run already moved into place."""
    raw = ingest_data.with_options(enable_cache=cached)(data, fingerprint(data.path, data.images))
    source = convert_annotations.with_options(enable_cache=cached)(raw)
    staged = etl_dataset.with_options(enable_cache=cached)(source, data)
    report, _ = validate_dataset.with_options(enable_cache=cached)(staged, data)
    version = version_dataset.with_options(
        enable_cache=cached, cache_policy=CachePolicy(ignored_inputs=["raw"])
    )
    return version(staged, report, raw, data)


@pipeline(enable_cache=False, on_failure=mark_failed, on_cleanup=remove_staging)
def data_pipeline(data: DataConfig) -> Any:
    """Build, validate and version the processed dataset named by the ``data`` config group."""
    return data_steps(data, cached=False)
