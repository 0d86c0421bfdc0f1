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
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from yeo.errors import ConfigError
from yeo.io import atomic_write_text
from yeo.train import trainer
from yeo.train.config import ModelConfig, TrainConfig
from yeo.tune_config import TuneConfig

log = logging.getLogger(__name__)
OBJECTIVE = "metrics/mAP50-95"
LOG_SCALE = frozenset({"lr0", "weight_decay"})


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
    workers: int = 1
    worker_pids: list[int] = []  # the processes that ran this study's trials (all runs)


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


@dataclass(frozen=True)
class Job:
    """What one worker process needs to contribute trials to the study (picklable)."""

    data_yaml: Path
    base: TrainConfig
    model_cfg: ModelConfig
    tune: TuneConfig
    study_name: str
    storage: str
    runs_dir: Path
    parent_run_id: str | None = None  # MLflow run the trials nest under
    torch_threads: int | None = None


def storage_url(tune: TuneConfig, storage_dir: Path, study_name: str) -> str:
    """``tune.storage``, else a team stack's PostgreSQL (``YEO_OPTUNA_STORAGE``), else a
    SQLite file in the workspace (one machine)."""
    found = tune.storage or os.environ.get("YEO_OPTUNA_STORAGE")
    if found:
        return found
    storage_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{storage_dir / f'{study_name}.db'}"


def _study(job: Job, worker: int, create: bool = False) -> Any:
    import optuna

    rdb = optuna.storages.RDBStorage(
        job.storage,
        heartbeat_interval=job.tune.heartbeat_s,
        grace_period=2 * job.tune.heartbeat_s,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=1
        ),
    )
    kwargs = {
        "study_name": job.study_name,
        "storage": rdb,
        # one seed per worker: identical samplers would propose identical first trials
        "sampler": optuna.samplers.TPESampler(seed=job.tune.seed + worker),
        "pruner": optuna.pruners.MedianPruner(n_warmup_steps=job.tune.pruner_warmup_epochs),
    }
    if create:
        return optuna.create_study(direction="maximize", load_if_exists=True, **kwargs)
    return optuna.load_study(**kwargs)


def work(job: Job, worker: int) -> None:
    """One worker: take trials from the shared study until it holds ``n_trials`` finished
    ones. Run in-process for worker 0, in a spawned process for the others."""
    import mlflow
    import optuna

    from yeo import env
    from yeo.train import tracking

    env.configure()
    if job.torch_threads:  # N workers share the cores
        import torch

        os.environ["YEO_TORCH_THREADS"] = str(job.torch_threads)
        torch.set_num_threads(job.torch_threads)
    mlflow.set_tracking_uri(env.workspace().mlflow_uri)
    tune = job.tune
    study = _study(job, worker)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def objective(trial: optuna.Trial) -> float:
        params = sample(trial, tune.space)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("pid", os.getpid())
        cfg = job.base.with_overrides(epochs=tune.epochs_per_trial, **params)
        nested = mlflow.active_run() is not None  # worker 0, inside the step's run
        parent = None if nested or not job.parent_run_id else job.parent_run_id
        tags = {"mlflow.parentRunId": parent} if parent else None
        name = f"{job.study_name}-trial-{trial.number}"
        with mlflow.start_run(run_name=name, nested=nested, tags=tags):
            mlflow.log_params(params | {"trial": trial.number, "epochs": cfg.epochs})
            mlflow.set_tags({"worker": worker, "pid": os.getpid()})
            try:
                outcome = trainer.train(
                    job.data_yaml,
                    cfg,
                    job.model_cfg,
                    job.runs_dir / f"trial-{trial.number}",
                    on_epoch_end=[tracking.log_epoch(), pruning_callback(trial)],
                )
            except optuna.TrialPruned:
                mlflow.set_tag("state", "pruned")
                raise
            value = max(h.get(OBJECTIVE, 0.0) for h in outcome.history)
            mlflow.log_metric("best_mAP50-95", value)
            mlflow.set_tag("state", "complete")
        return value

    # MaxTrialsCallback stops every worker at n_trials finished (checked by each worker as
    # its trial ends: with N workers the study can overshoot by at most N - 1); a retry that
    # fails again does not use up a slot
    study.optimize(
        objective,
        n_trials=None,
        timeout=tune.timeout,
        catch=(),
        callbacks=[optuna.study.MaxTrialsCallback(tune.n_trials, states=finished)],
    )


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
    """Run (or resume) the study with ``tune.workers`` processes; each trial trains
    ``epochs_per_trial`` epochs."""
    import multiprocessing

    import mlflow
    import optuna

    active = mlflow.active_run()
    job = Job(
        data_yaml,
        base,
        model_cfg,
        tune,
        study_name,
        storage_url(tune, storage_dir, study_name),
        runs_dir,
        active.info.run_id if active else None,
        max(1, (os.cpu_count() or 1) // tune.workers) if tune.workers > 1 else None,
    )
    study = _study(job, 0, create=True)
    done_before = len(study.trials)
    optuna.storages.fail_stale_trials(study)  # a killed run's RUNNING trial: FAIL, re-queued
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = tune.n_trials - len(study.get_trials(deepcopy=False, states=finished))
    log.info(
        "study %s (%s): %d of %d trials finished, %d worker(s)",
        study_name,
        job.storage.split("://")[0],
        tune.n_trials - remaining,
        tune.n_trials,
        tune.workers,
    )
    if remaining > 0:
        ctx = multiprocessing.get_context("spawn")  # no forked torch/ZenML state
        others = [ctx.Process(target=work, args=(job, w)) for w in range(1, tune.workers)]
        for p in others:
            p.start()
        try:
            work(job, 0)
        finally:
            for p in others:
                p.join()
        failed = [w for w, p in enumerate(others, 1) if p.exitcode]
        if failed:
            log.warning("tuning workers %s exited with an error (their trials: FAIL)", failed)
    study = _study(job, 0)
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
    pids = sorted({t.user_attrs["pid"] for t in study.trials if "pid" in t.user_attrs})
    return TuneResult(
        study=study_name,
        storage=_redact(job.storage),
        n_trials=len(study.trials),
        n_complete=len(complete),
        n_pruned=states.count(optuna.trial.TrialState.PRUNED),
        n_failed=states.count(optuna.trial.TrialState.FAIL),
        best_value=study.best_value,
        best_params=study.best_params,
        config_file=str(config_out),
        plots=[str(p) for p in plots],
        workers=tune.workers,
        worker_pids=pids,
    )


def _redact(url: str) -> str:
    """A storage URL without its password (it lands in artifacts and logs)."""
    import re

    return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)


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
