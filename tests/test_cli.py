"""run.py: help, unknown pipeline, misspelled overrides (no pipeline is started)."""

from __future__ import annotations

from tests.conftest import run_cli


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
