"""The ``tune`` group, apart from :mod:`yeo.tune` (which loads Optuna and the trainer), so that
parsing a config imports neither."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from yeo.errors import ConfigError
from yeo.group import Group
from yeo.train.config import TrainConfig


class TuneConfig(Group):
    """The ``tune`` group: the Optuna study and its search space over ``train`` keys."""

    study: str | None = None
    n_trials: int = 10
    epochs_per_trial: int = 8
    timeout: float | None = None
    seed: int = 0
    pruner_warmup_epochs: int = 2
    heartbeat_s: int = 30  # a trial silent for 2x this is stale (its process died): FAIL
    storage: str | None = None  # an RDB URL (postgresql://...) several workers/hosts share
    workers: int = 1  # processes on this machine taking trials from the one study
    space: dict[str, list[float]] = Field(default_factory=dict)

    def model_post_init(self, _: Any) -> None:
        tc = self
        bad = set(tc.space) - set(TrainConfig.model_fields)
        if bad:
            raise ConfigError(f"tune.space: {sorted(bad)} are not train parameters")
        for k, v in tc.space.items():
            if len(v) != 2 or not v[0] < v[1]:
                raise ConfigError(f"tune.space.{k} must be [low, high] with low < high, got {v}")
        if min(tc.n_trials, tc.epochs_per_trial, tc.heartbeat_s, tc.workers) < 1:
            raise ConfigError(
                "tune.n_trials, epochs_per_trial, heartbeat_s and workers must be >= 1"
            )
        if tc.storage and "://" not in tc.storage:
            raise ConfigError(f"tune.storage must be a database URL, got {tc.storage!r}")
