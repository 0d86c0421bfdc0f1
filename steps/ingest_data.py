"""Ingest: locate, generate or download the raw files of the configured source."""

from __future__ import annotations

from typing import Annotated, Any

from zenml import step

from yeo.data import sources
from yeo.data.model import RawSource
from yeo.data.settings import DataConfig
from yeo.env import is_offline, workspace
from yeo.tracking import log_step


@step(enable_cache=False)
def ingest_data(data: DataConfig, fingerprint: str = "") -> Annotated[RawSource, "raw_source"]:
    """Return where the raw dataset is; synthetic data is generated into ``data/raw/<name>``.
    ``fingerprint`` (:func:`yeo.data.sources.fingerprint`) keys the cache of the pipelines
    that cache this step on the raw files' content, not only on the config."""

    raw = sources.ingest(data.source_config(), workspace().data / "raw", is_offline())
    # new content, new artifact; a generated source's fingerprint is its spec's
    raw = raw.model_copy(update={"fingerprint": fingerprint or raw.fingerprint})
    log_step(
        "ingest",
        params={f"data.{k}": v for k, v in _flat(data.model_dump()).items()},
        tags={
            "data.source": raw.kind,
            "data.raw_root": raw.root,
            "data.fingerprint": raw.fingerprint,
        },
    )
    return raw


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, f"{key}.") if isinstance(v, dict) else {key: v})
    return out
