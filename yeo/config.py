"""Typed config groups: ``conf/`` is composed by Hydra once, at the CLI, and validated here
into these models; pipelines and steps take them as parameters (ZenML stores them as JSON
with the run), so no step re-parses a dict.

Unknown keys and wrong types fail as one-line :class:`ConfigError` naming the key; a model's
own checks (ranges, combinations) raise it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yeo.benchmark_config import BenchmarkConfig
from yeo.data.settings import DataConfig
from yeo.evaluation import EvalConfig
from yeo.group import Group
from yeo.optimize.settings import OptimizeConfig
from yeo.train.config import ModelConfig, TrainConfig
from yeo.tune_config import TuneConfig


@dataclass(frozen=True)
class RunConfig:
    """Every group of one composed config, typed; the CLI builds it once per run."""

    data: DataConfig
    train: TrainConfig
    model: ModelConfig
    eval: EvalConfig
    optimize: OptimizeConfig
    tune: TuneConfig
    benchmark: BenchmarkConfig
    serve: dict[str, Any]  # the CLI-only groups (no step takes them) stay plain
    fetch: dict[str, Any]
    stack: dict[str, Any]
    tracking: dict[str, Any]

    @classmethod
    def parse(cls, cfg: dict[str, Any]) -> RunConfig:
        groups: dict[str, type[Group]] = {
            "data": DataConfig,
            "train": TrainConfig,
            "model": ModelConfig,
            "eval": EvalConfig,
            "optimize": OptimizeConfig,
            "tune": TuneConfig,
            "benchmark": BenchmarkConfig,
        }
        typed = {name: model.parse(name, cfg.get(name)) for name, model in groups.items()}
        rest = {k: dict(cfg.get(k) or {}) for k in ("serve", "fetch", "stack", "tracking")}
        return cls(**typed, **rest)  # type: ignore[arg-type]
