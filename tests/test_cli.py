"""run.py: help, unknown pipeline, misspelled overrides (no pipeline is started)."""

from __future__ import annotations

import os

from tests.conftest import CODE_ROOT, run_cli


def test_help_lists_every_pipeline_with_one_line() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    assert "data" in out.stdout and "Great Expectations" in out.stdout


def test_unknown_pipeline_exits_2() -> None:
    out = run_cli("--pipeline", "nope")
    assert out.returncode == 2
    assert "invalid choice: 'nope'" in out.stderr


def test_misspelled_override_is_one_line_and_exit_2() -> None:
    out = run_cli("--pipeline", "data", "data.synthetic.num_imagez=5")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run.py: error:")
    assert "num_imagez" in lines[0]


def test_unknown_config_group_option_exits_2() -> None:
    out = run_cli("--pipeline", "data", "data=parquet")
    assert out.returncode == 2
    assert "parquet" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_bad_config_value_is_caught_before_the_pipeline_starts() -> None:
    out = run_cli("--pipeline", "data", "data.on_error=ignore")
    assert out.returncode == 2
    assert (
        out.stderr.strip() == "run.py: error: data.on_error must be 'fail' or 'skip', got 'ignore'"
    )
    out = run_cli("--pipeline", "data", "data.split={train:0.8,holdout:0.2}")
    assert out.returncode == 2 and "data.split" in out.stderr


def test_torch_threads_do_not_spin_away_a_shared_cpu() -> None:
    """configure() caps libgomp's spin (GOMP_SPINCOUNT) before torch loads, in run.py and in a
    notebook kernel alike (their first import is yeo.env; yeo.cli does not load torch), and
    leaves a value the user set alone. Why: yeo/env.py OMP_SPIN."""
    import subprocess
    import sys

    probe = (
        "import os, sys; os.environ.pop('GOMP_SPINCOUNT', None); from yeo import env; "
        "env.configure(); import yeo.cli; "
        "print(os.environ['GOMP_SPINCOUNT'], 'torch' in sys.modules)"
    )
    for preset, expect in ((None, "10000 False"), ("123", "123 False")):
        environ = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
        code = (
            probe
            if preset is None
            else probe.replace(
                "os.environ.pop('GOMP_SPINCOUNT', None)",
                f"os.environ['GOMP_SPINCOUNT'] = {preset!r}",
            )
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=CODE_ROOT
        )
        assert out.stdout.split("\n")[0] == expect, out.stderr
