"""Tuning: a 2-trial study offline; rerunning continues it; train=tuned picks up the result."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow
ARGS = [
    "data.synthetic.num_images=16",
    "data.synthetic.imgsz=64",
    "train.imgsz=64",
    "train.batch=8",
    "tune.n_trials=2",
    "tune.epochs_per_trial=2",
    "tune.pruner_warmup_epochs=1",
    "tune.study=t",
]


def test_tune_runs_resumes_and_feeds_train(tmp_path: Path, monkeypatch) -> None:
    import mlflow
    import optuna
    import yaml

    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    env, guard = {"YEO_HOME": str(root)}, tmp_path / "net.log"
    out = run_cli("--pipeline", "tune", *ARGS, env_extra=env, guard=guard)
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

    out = run_cli("--pipeline", "tune", *ARGS, env_extra=env)  # same storage: continues
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(optuna.load_study(study_name="t", storage=f"sqlite:///{db}").trials) == 4

    monkeypatch.setenv("YEO_HOME", str(root))
    from yeo.cli import compose_config

    cfg = compose_config(["train=tuned"])
    assert cfg["train"]["lr0"] == pytest.approx(tuned["lr0"])
