"""Benchmark: every variant of an optimize run and its peers, side by side, with ratios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step
from zenml.types import MarkdownString

from yeo.benchmark import compare, latest_run, markdown
from yeo.benchmark_config import BenchmarkConfig
from yeo.env import workspace
from yeo.io import atomic_write_text, write_json
from yeo.tracking import log_step


@step(enable_cache=False)
def benchmark_variants(benchmark: BenchmarkConfig) -> Annotated[MarkdownString, "benchmark_table"]:
    """Write ``outputs/benchmarks/<optimize run>/benchmark.{json,md}`` and log them."""

    run = Path(benchmark.run) if benchmark.run else latest_run()
    out = workspace().outputs / "benchmarks" / run.name
    if benchmark.imgsz:
        out = out / str(benchmark.imgsz)
    result = compare(
        run,
        out,
        benchmark.rounds,
        benchmark.runs,
        benchmark.threads,
        list(benchmark.peers),
        benchmark.imgsz,
    )
    js = write_json(out / "benchmark.json", result)
    md = atomic_write_text(out / "benchmark.md", markdown(result))
    log_step(
        "benchmark",
        metrics={f"bench/{r['model']}/p50_ms": r["p50_ms"] for r in result["rows"]},
        files={str(js): "benchmark", str(md): "benchmark"},
        metadata={"table": str(md), "models": len(result["rows"])},
    )
    return MarkdownString(md.read_text())
