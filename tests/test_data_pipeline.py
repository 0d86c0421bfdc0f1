"""``python run.py --pipeline data`` end to end through ZenML, offline, in a fresh workspace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CODE_ROOT, make_yolo, run_cli

pytestmark = pytest.mark.slow
TINY = [
    "data.synthetic.num_images=16",
    "data.synthetic.imgsz=64",
    "data.synthetic.test_images=0",
    "data.synthetic.val_images=0",
]


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A fresh workspace (git repo, so DVC writes .dvc files to commit)."""
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return {"YEO_HOME": str(root)}


def test_data_pipeline_end_to_end_offline(home: dict[str, str], tmp_path: Path) -> None:
    guard = tmp_path / "network.log"
    out = run_cli("--pipeline", "data", *TINY, env_extra=home, guard=guard)
    assert out.returncode == 0, out.stderr[-3000:]
    attempts = guard.read_text().splitlines() if guard.exists() else []
    assert attempts == [], f"network attempts: {attempts}"
    root = Path(home["YEO_HOME"])
    processed = root / "data" / "processed" / "synthetic"
    assert (processed / "metadata.parquet").is_file() and (processed / "images.parquet").is_file()
    data = yaml.safe_load((processed / "data.yaml").read_text())
    assert data["names"] == {0: "scratch", 1: "pits", 2: "stain", 3: "crack"}
    assert (processed / data["train"]).is_dir() and (processed / data["val"]).is_dir()
    dvc_file = yaml.safe_load((root / "data" / "processed" / "synthetic.dvc").read_text())
    md5 = dvc_file["outs"][0]["md5"]
    assert f"dvc hash     {md5}" in out.stdout
    assert (root / "data" / "raw" / "synthetic.dvc").is_file()
    assert (root / "outputs" / "reports" / "data" / "synthetic" / "validation.md").is_file()
    # the MLflow run carries the DVC hash and the ZenML run id
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root}/.state/mlflow/mlflow.db")
    exp = client.get_experiment_by_name("yolo-edge-optimizer")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.tags["data.dvc_hash"] == md5
    assert "zenml_run_id" in run.data.tags
    assert run.data.metrics["data.images"] == 16
    # dvc pull restores the data from the local remote after it is deleted
    shutil.rmtree(processed)
    pull = subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "data/processed/synthetic.dvc"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **home, "DVC_NO_ANALYTICS": "1"},
    )
    assert pull.returncode == 0, pull.stderr
    assert (processed / "metadata.parquet").is_file()


def test_bad_data_fails_with_one_line_and_publishes_nothing(
    home: dict[str, str], tmp_path: Path
) -> None:
    src = make_yolo(tmp_path / "bad")
    label = sorted((src / "labels" / "train").glob("*.txt"))[0]
    label.write_text("7 0.5 0.5 0.2 0.2\n")
    out = run_cli("--pipeline", "data", "data=yolo", f"data.path={src}", env_extra=home)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr + out.stdout
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("run.py: error: yolo: validation failed with 1 error")
    assert label.stem in last and "class id 7 outside 0..3" in last
    root = Path(home["YEO_HOME"])
    assert not (root / "data" / "processed" / "yolo").exists()
    report = root / "outputs" / "reports" / "data" / "yolo" / "validation.md"
    assert label.stem in report.read_text()
    import mlflow  # the failed run is recorded as FAILED, naming the step and the reason

    client = mlflow.MlflowClient(f"sqlite:///{root}/.state/mlflow/mlflow.db")
    exp = client.get_experiment_by_name("yolo-edge-optimizer")
    (failed,) = client.search_runs([exp.experiment_id], "tags.failed_step = 'validate_dataset'")
    assert failed.info.status == "FAILED" and "class id 7" in failed.data.tags["failure"]
    # with on_error=skip the same data passes, the bad image dropped and reported
    out = run_cli(
        "--pipeline",
        "data",
        "data=yolo",
        f"data.path={src}",
        "data.on_error=skip",
        env_extra=home,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "11 images" in out.stdout
    assert (root / "data" / "processed" / "yolo" / "metadata.parquet").is_file()


def test_dvc_repro_rebuilds_through_the_same_pipeline(home: dict[str, str]) -> None:
    root = Path(home["YEO_HOME"])
    stage = {
        "stages": {
            "data": {
                "cmd": f"{sys.executable} {CODE_ROOT / 'run.py'} --pipeline data " + " ".join(TINY),
                "outs": ["data/raw/synthetic", "data/processed/synthetic"],
            }
        }
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump(stage))
    env = {**os.environ, **home}
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env)
    repro = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=root, capture_output=True, text=True, env=env
    )
    assert repro.returncode == 0, repro.stderr[-3000:]
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    outs = {o["path"]: o["md5"] for o in lock["stages"]["data"]["outs"]}
    assert f"dvc hash     {outs['data/processed/synthetic']}" in repro.stdout
    assert not (root / "data" / "processed" / "synthetic.dvc").exists()
    # a plain pipeline run now records into dvc.lock (the stage owns the path), not a .dvc file
    out = run_cli("--pipeline", "data", *TINY, env_extra=home)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "dvc.lock (data)" in out.stdout


def test_the_committed_dvc_lock_matches_the_code_it_hashes() -> None:
    """A fresh clone's first run must not rewrite dvc.lock (and record ``<commit>-dirty``):
    the committed lock's dependency hashes and command are those of the code beside it. When
    this fails, the data code changed: ``PATH=.venv/bin:$PATH dvc repro`` and commit the lock.
    (Missing outputs are fine: a clone has no data until it runs.)"""
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "data", "--json"],
        cwd=CODE_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    status = json.loads(out.stdout or "{}")
    stale = [
        (key, value)
        for entry in status.get("data", [])
        if isinstance(entry, dict)
        for key, value in entry.items()
        if key in ("changed deps", "changed command")
    ]
    assert not stale, f"dvc.lock is stale: {stale}"
    deps = yaml.safe_load((CODE_ROOT / "dvc.yaml").read_text())["stages"]["data"]["deps"]
    assert "steps" not in deps  # the optimize pipeline's steps do not invalidate the data
