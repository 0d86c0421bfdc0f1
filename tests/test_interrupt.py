"""Kill and resume: SIGKILL the optimize pipeline during fine-tuning, INT8 trials and the bundle
build; nothing half-written is taken for output, and the same command then runs cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CODE_ROOT, run_cli
from tests.test_optimize_pipeline import TINY

pytestmark = pytest.mark.slow


def kill_when(args: list[str], env: dict[str, str], ready: Callable[[str], bool]) -> str:
    """Start run.py with ``args``; SIGKILL its process group once ``ready(output so far)``."""
    proc = subprocess.Popen(
        [sys.executable, str(CODE_ROOT / "run.py"), *args],
        cwd=CODE_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the kill reaches every child (dataloaders, onnxruntime)
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 400
    while not ready("".join(lines)):
        assert proc.poll() is None, "ended before the kill:\n" + "".join(lines)[-3000:]
        assert time.monotonic() < deadline, "".join(lines)[-3000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return "".join(lines)


def started(step: str, seconds: float = 0.0) -> Callable[[str], bool]:
    """True ``seconds`` after ZenML logged that ``step`` started (inside its work)."""
    seen: list[float] = []

    def ready(out: str) -> bool:
        if not seen and re.search(rf"Step .{step}. has started", out):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= seconds

    return ready


def test_killed_runs_leave_nothing_that_passes_for_output(
    trained_model: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    env = {"YEO_HOME": str(root)}
    args = ["--pipeline", "optimize", *TINY, f"optimize.base_model={trained_model}"]
    quick = [*args, "optimize.prune.enabled=false"]
    bundles = root / "edge" / "bundles"

    def outputs(name: str) -> list[Path]:
        return list((root / "outputs" / "optimize").rglob(name))

    # 1. during fine-tuning (the prune step's training loop)
    kill_when(args, env, started("prune_model", 3.0))
    assert not outputs("variants.json") and not outputs("report.json")
    # 2. during the INT8 trials
    kill_when(quick, env, started("quantize_base", 1.0))
    assert not outputs("variants.json") and not bundles.exists()
    # 3. inside the bundle build: its hidden temp folder exists, nothing else
    kill_when(quick, env, lambda _: bundles.is_dir() and any(bundles.glob(".*.tmp-*")))
    (orphan,) = [p.name for p in bundles.iterdir()]
    assert re.fullmatch(r"\.yolov8n-synthetic-v1\.tmp-\d+-\w+", orphan), orphan
    out = run_cli("--pipeline", "serve", env_extra=env)  # never serves the half-written one
    assert out.returncode == 2 and "no bundle in edge/bundles" in out.stderr, out.stderr

    # the same command again: runs to the end, publishes v1, and sweeps the dead run's folder
    out = run_cli(*quick, env_extra=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in bundles.iterdir()) == [
        "yolov8n-synthetic-v1",
        "yolov8n-synthetic-v1.tar.gz",
    ]
    meta = json.loads((bundles / "yolov8n-synthetic-v1" / "metadata.json").read_text())
    assert meta["metrics"]["split"] == "test"
    check = subprocess.run(
        [sys.executable, "-m", "edge.verify", str(bundles / "yolov8n-synthetic-v1")],
        cwd=CODE_ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
