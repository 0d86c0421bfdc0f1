"""Tuning: a 2-trial study offline; a run killed inside a trial's training, rerun, continues
the study, its killed trial failed and retried (never left RUNNING); train=tuned picks up the
result."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CODE_ROOT, run_cli

pytestmark = pytest.mark.slow
BASE = [
    "data.synthetic.num_images=16",
    "data.synthetic.test_images=0",
    "data.synthetic.val_images=0",
    "data.synthetic.imgsz=64",
    "train.imgsz=64",
    "train.batch=8",
    "tune.epochs_per_trial=2",
    "tune.pruner_warmup_epochs=1",
]
ARGS = [*BASE, "tune.study=t"]


def test_tune_runs_survives_a_kill_resumes_and_feeds_train(tmp_path: Path, monkeypatch) -> None:
    import mlflow
    import optuna
    import yaml

    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    env, guard = {"YEO_HOME": str(root)}, tmp_path / "net.log"
    out = run_cli("--pipeline", "tune", *ARGS, "tune.n_trials=2", env_extra=env, guard=guard)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not guard.exists() or guard.read_text() == "", guard.read_text()
    db = root / ".state" / "optuna" / "t.db"
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    assert len(study.trials) == 2
    tuned = yaml.safe_load((root / "conf" / "train" / "tuned.yaml").read_text())
    assert tuned["lr0"] == pytest.approx(study.best_params["lr0"], rel=1e-4)
    assert tuned["imgsz"] == 64  # the rest comes from the base profile
    assert (root / "outputs" / "tune" / "t" / "plots" / "optimization_history.png").is_file()

    client = mlflow.MlflowClient(f"sqlite:///{root}/.state/mlflow/mlflow.db")
    exp = client.get_experiment_by_name("yolo-edge-optimizer")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}

    # killed inside a trial's training, then the same command again: the killed trial is failed
    # and retried with its parameters, and the study continues to the new total
    # (n_trials counts the study's finished trials)
    killed = _kill_inside_a_trial(root, env, tmp_path / "killed.log", "t", n_trials=4)
    out = run_cli("--pipeline", "tune", *_kill_args("t", 4), env_extra=env)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = optuna.load_study(study_name="t", storage=f"sqlite:///{db}").trials
    by_state = {s: [t for t in trials if t.state == s] for s in optuna.trial.TrialState}
    assert not by_state[optuna.trial.TrialState.RUNNING]
    assert [t.number for t in by_state[optuna.trial.TrialState.FAIL]] == [killed.number]
    finished = by_state[optuna.trial.TrialState.COMPLETE] + by_state[optuna.trial.TrialState.PRUNED]
    assert len(finished) == 4  # the right count: the killed trial did not use up a slot
    retried = [t for t in finished if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retried) == 1 and retried[0].params == killed.params  # same parameters again

    monkeypatch.setenv("YEO_HOME", str(root))
    from yeo.cli import compose_config

    cfg = compose_config(["train=tuned"])
    assert cfg["train"]["lr0"] == pytest.approx(tuned["lr0"])


def _kill_args(study: str, n_trials: int) -> list[str]:
    # 3 epochs a trial: the kill comes after the first epoch's report, with two to go
    base = [a for a in BASE if not a.startswith("tune.epochs_per_trial=")]
    return [*base, "tune.epochs_per_trial=3", f"tune.study={study}", f"tune.n_trials={n_trials}",
            "tune.heartbeat_s=1"]  # fmt: skip


def _kill_inside_a_trial(root: Path, env: dict, log: Path, study: str, n_trials: int):
    """Start ``--pipeline tune``, SIGKILL it once a RUNNING trial has reported an epoch; the
    trial the kill left RUNNING."""
    import optuna

    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(CODE_ROOT / "run.py"), "--pipeline", "tune",
             *_kill_args(study, n_trials)],
            cwd=CODE_ROOT,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill reaches every child
        )  # fmt: skip
    db = root / ".state" / "optuna" / f"{study}.db"

    def running(training: bool = False) -> list[int]:
        """RUNNING trial numbers (``training``: those that reported an epoch), read-only
        (opening the study with Optuna would write to the file the tuning process is
        creating, and could lock it out)."""
        if not db.is_file():
            return []
        sql = "SELECT number FROM trials WHERE state = 'RUNNING'"
        if training:
            sql += " AND trial_id IN (SELECT trial_id FROM trial_intermediate_values)"
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                rows = con.execute(sql).fetchall()
        except sqlite3.Error:  # tables not created yet
            return []
        return [n for (n,) in rows]

    deadline = time.monotonic() + 300
    while not running(training=True):  # inside the trial's training: an epoch reported
        assert proc.poll() is None, "ended before the kill:\n" + log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no trial trained an epoch within 300 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    (number,) = running()  # what a kill leaves behind
    return optuna.load_study(study_name=study, storage=f"sqlite:///{db}").trials[number]
