"""Benchmark: every variant of an optimize run and its peers, side by side, with ratios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from zenml import step
from zenml.types import MarkdownString

from yeo.benchmark import PEERS, compare, latest_run, markdown
from yeo.env import workspace
from yeo.errors import ConfigError
from yeo.io import atomic_write_text, write_json
from yeo.tracking import mlflow_run, step_metadata


def check(cfg: dict[str, Any]) -> None:
    unknown = [p for p in cfg["peers"] if p not in PEERS]
    if unknown:
        raise ConfigError(f"benchmark.peers: unknown {unknown}; known: {list(PEERS)}")
    if min(cfg["rounds"], cfg["runs"], cfg["threads"]) < 1:
        raise ConfigError("benchmark.rounds, runs and threads must be >= 1")
    if cfg["imgsz"] is not None and (cfg["imgsz"] < 32 or cfg["imgsz"] % 32):
        raise ConfigError(f"benchmark.imgsz must be a multiple of 32 (or null), got {cfg['imgsz']}")
    if cfg["run"] and not (Path(cfg["run"]) / "variants.json").is_file():
        raise ConfigError(f"benchmark.run: {cfg['run']} has no variants.json")


@step(enable_cache=False)
def benchmark_variants(benchmark: dict[str, Any]) -> Annotated[MarkdownString, "benchmark_table"]:
    """Write ``outputs/benchmarks/<optimize run>/benchmark.{json,md}`` and log them."""
    import mlflow

    run = Path(benchmark["run"]) if benchmark["run"] else latest_run()
    out = workspace().outputs / "benchmarks" / run.name
    if benchmark["imgsz"]:
        out = out / str(benchmark["imgsz"])
    result = compare(
        run,
        out,
        benchmark["rounds"],
        benchmark["runs"],
        benchmark["threads"],
        list(benchmark["peers"]),
        benchmark["imgsz"],
    )
    js = write_json(out / "benchmark.json", result)
    md = atomic_write_text(out / "benchmark.md", markdown(result))
    with mlflow_run("benchmark"):
        mlflow.log_artifact(str(js), "benchmark")
        mlflow.log_artifact(str(md), "benchmark")
        mlflow.log_metrics({f"bench/{r['model']}/p50_ms": r["p50_ms"] for r in result["rows"]})
    step_metadata({"table": str(md), "models": len(result["rows"])})
    return MarkdownString(md.read_text())
