"""Typed config groups: ``conf/`` is composed by Hydra once, at the CLI, and validated here
into these models; pipelines and steps take them as parameters (ZenML stores them as JSON
with the run), so no step re-parses a dict.

Unknown keys and wrong types fail as one-line :class:`ConfigError` naming the key; a model's
own checks (ranges, combinations) raise it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from yeo.errors import ConfigError

if TYPE_CHECKING:
    from yeo.benchmark import BenchmarkConfig
    from yeo.data.settings import DataConfig
    from yeo.evaluation import EvalConfig
    from yeo.optimize.settings import OptimizeConfig
    from yeo.train.config import ModelConfig, TrainConfig
    from yeo.tune import TuneConfig


class Group(BaseModel):
    """One config group (or a part of one): frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def parse(cls, group: str, cfg: dict[str, Any] | None) -> Self:
        """``cfg`` validated as this group; a fault is a ConfigError naming ``group.key``."""
        try:
            return cls.model_validate(cfg or {})
        except ValidationError as e:
            unknown = sorted(
                ".".join(map(str, err["loc"]))
                for err in e.errors()
                if err["type"] == "extra_forbidden"
            )
            if unknown:
                raise ConfigError(f"{group}: unknown keys {unknown}") from None
            err = e.errors()[0]
            where = ".".join(map(str, (group, *err["loc"])))
            raise ConfigError(f"{where}: {err['msg']} (got {err.get('input')!r})") from None


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
        from yeo.benchmark import BenchmarkConfig
        from yeo.data.settings import DataConfig
        from yeo.evaluation import EvalConfig
        from yeo.optimize.settings import OptimizeConfig
        from yeo.train.config import ModelConfig, TrainConfig
        from yeo.tune import TuneConfig

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
