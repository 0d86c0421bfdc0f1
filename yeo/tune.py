"""Hyperparameter search with Optuna over the training recipe.

TPE sampler and a median pruner fed with the per-epoch mAP50-95 that an ultralytics callback
reports. The study lives in a SQLite file inside the workspace, so an interrupted study
resumes under the same name: ``n_trials`` is the study's total of finished trials, and a trial
whose process was killed (its heartbeat stopped) is marked FAIL on resume and retried once
with the same parameters, never left RUNNING. Each trial is a nested MLflow run; the best
parameters become a Hydra config (``conf/train/tuned.yaml``) that ``--pipeline train
train=tuned`` picks up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from yeo.errors import ConfigError
from yeo.io import atomic_write_text
from yeo.train import trainer
from yeo.train.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)
OBJECTIVE = "metrics/mAP50-95"
LOG_SCALE = frozenset({"lr0", "weight_decay"})


@dataclass(frozen=True)
class TuneConfig:
    study: str | None = None
    n_trials: int = 10
    epochs_per_trial: int = 8
    timeout: float | None = None
    seed: int = 0
    pruner_warmup_epochs: int = 2
    heartbeat_s: int = 30  # a trial silent for 2x this is stale (its process died): FAIL
    space: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> TuneConfig:
        tc = cls(**cfg)
        bad = set(tc.space) - set(TrainConfig.__dataclass_fields__)
        if bad:
            raise ConfigError(f"tune.space: {sorted(bad)} are not train parameters")
        for k, v in tc.space.items():
            if len(v) != 2 or not v[0] < v[1]:
                raise ConfigError(f"tune.space.{k} must be [low, high] with low < high, got {v}")
        if tc.n_trials < 1 or tc.epochs_per_trial < 1 or tc.heartbeat_s < 1:
            raise ConfigError("tune.n_trials, epochs_per_trial and heartbeat_s must be >= 1")
        return tc


class TuneResult(BaseModel):
    study: str
    storage: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int = 0  # killed or crashed trials (retried once each)
    best_value: float
    best_params: dict[str, float]
    config_file: str
    plots: list[str]


def sample(trial: Any, space: dict[str, list[float]]) -> dict[str, float]:
    return {k: trial.suggest_float(k, lo, hi, log=k in LOG_SCALE) for k, (lo, hi) in space.items()}


def pruning_callback(trial: Any) -> Any:
    """Report each epoch's mAP50-95 to Optuna; stop the trial if the pruner says so."""
    import optuna

    def callback(tr: Any) -> None:
        value = trainer.epoch_metrics(tr).get(OBJECTIVE, 0.0)
        trial.report(value, step=tr.epoch + 1)
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {tr.epoch + 1}: mAP50-95 {value:.4f} below median")

    return callback


def write_tuned_config(path: Path, base: TrainConfig, params: dict[str, float], study: str) -> Path:
    """A train profile: the base profile's values with the study's best parameters."""
    import yaml

    values = vars(base) | {k: round(float(v), 6) for k, v in params.items()}
    header = f"# Written by `run.py --pipeline tune` (study {study}). Use: train=tuned\n"
    return atomic_write_text(path, header + yaml.safe_dump(values, sort_keys=False))


def run_study(
    data_yaml: Path,
    base: TrainConfig,
    model_cfg: ModelConfig,
    tune: TuneConfig,
    study_name: str,
    storage_dir: Path,
    runs_dir: Path,
    config_out: Path,
    plots_dir: Path,
) -> TuneResult:
    """Run (or resume) the study; each trial trains ``epochs_per_trial`` epochs."""
    import mlflow
    import optuna

    from yeo.train import tracking

    storage_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{storage_dir / f'{study_name}.db'}"
    rdb = optuna.storages.RDBStorage(
        storage,
        heartbeat_interval=tune.heartbeat_s,
        grace_period=2 * tune.heartbeat_s,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=1
        ),
    )
    study = optuna.create_study(
        study_name=study_name,
        storage=rdb,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=tune.seed),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=tune.pruner_warmup_epochs),
    )
    done_before = len(study.trials)

    def objective(trial: optuna.Trial) -> float:
        params = sample(trial, tune.space)
        cfg = base.with_overrides(epochs=tune.epochs_per_trial, **params)
        with mlflow.start_run(run_name=f"{study_name}-trial-{trial.number}", nested=True):
            mlflow.log_params(params | {"trial": trial.number, "epochs": cfg.epochs})
            try:
                outcome = trainer.train(
                    data_yaml,
                    cfg,
                    model_cfg,
                    runs_dir / f"trial-{trial.number}",
                    on_epoch_end=[tracking.log_epoch(), pruning_callback(trial)],
                )
            except optuna.TrialPruned:
                mlflow.set_tag("state", "pruned")
                raise
            value = max(h.get(OBJECTIVE, 0.0) for h in outcome.history)
            mlflow.log_metric("best_mAP50-95", value)
            mlflow.set_tag("state", "complete")
        return value

    optuna.storages.fail_stale_trials(study)  # a killed run's RUNNING trial: FAIL, re-queued
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = tune.n_trials - len(study.get_trials(deepcopy=False, states=finished))
    log.info(
        "study %s: %d of %d trials finished", study_name, tune.n_trials - remaining, tune.n_trials
    )
    # MaxTrialsCallback stops the study at n_trials finished: a retry that fails again does
    # not use up a slot
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=None,
            timeout=tune.timeout,
            catch=(),
            callbacks=[optuna.study.MaxTrialsCallback(tune.n_trials, states=finished)],
        )
    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"study {study_name}: no trial completed; raise tune.epochs_per_trial")
    write_tuned_config(config_out, base, study.best_params, study_name)
    plots = save_plots(study, plots_dir)
    log.info(
        "study %s: %d new trials, best %.4f",
        study_name,
        len(study.trials) - done_before,
        study.best_value,
    )
    return TuneResult(
        study=study_name,
        storage=storage,
        n_trials=len(study.trials),
        n_complete=len(complete),
        n_pruned=states.count(optuna.trial.TrialState.PRUNED),
        n_failed=states.count(optuna.trial.TrialState.FAIL),
        best_value=study.best_value,
        best_params=study.best_params,
        config_file=str(config_out),
        plots=[str(p) for p in plots],
    )


def save_plots(study: Any, folder: Path) -> list[Path]:
    """Optimization history and parallel coordinates as PNGs (matplotlib, no network)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, fn in (
        ("optimization_history", ovm.plot_optimization_history),
        ("parallel_coordinate", ovm.plot_parallel_coordinate),
    ):
        try:
            ax = fn(study)
        except (ValueError, RuntimeError) as e:  # e.g. too few complete trials
            log.warning("plot %s skipped: %s", name, e)
            continue
        fig = ax.figure if hasattr(ax, "figure") else ax[0].figure
        fig.set_size_inches(9, 5)
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        out.append(path)
    return out
