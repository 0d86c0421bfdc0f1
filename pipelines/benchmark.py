"""``--pipeline benchmark``: the latest optimize run's variants and peers, side by side."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from steps.benchmark_variants import benchmark_variants
from yeo.benchmark_config import BenchmarkConfig
from yeo.io import remove_staging
from yeo.tracking import mark_failed


@pipeline(enable_cache=False, on_failure=mark_failed, on_cleanup=remove_staging)
def benchmark_pipeline(benchmark: BenchmarkConfig) -> Any:
    """One step: a single process times every model in interleaved rounds."""
    return benchmark_variants(benchmark)
