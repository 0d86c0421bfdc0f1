"""What is only config-validated here (no cluster, no cloud): the example ZenML stacks under
``conf/zenml/`` and the GPU step settings, checked by ZenML's own config classes; and the
one-line errors of a team stack that is not there or a tuning setup that cannot work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import CODE_ROOT, run_cli
from yeo.errors import ConfigError
from yeo.gpu_steps import gpu_step_options
from yeo.stack import check_stack_file

STACKS = sorted((CODE_ROOT / "conf" / "zenml").glob("*.yaml"))


def test_the_example_stacks_are_what_zenml_accepts() -> None:
    assert {p.stem for p in STACKS} >= {"kubernetes", "gcp"}
    for path in STACKS:
        assert check_stack_file(path) == [], path
        comps = yaml.safe_load(path.read_text())["components"]
        assert {"orchestrator", "step_operator", "artifact_store"} <= set(comps), path


@pytest.mark.parametrize(
    ("edit", "fault"),
    [
        (("orchestrator", "kubernetes_namespce", "yeo"), "unknown keys ['kubernetes_namespce']"),
        (("step_operator", "pod_settings", {"resources": {"limits": {"gpu": 1}}}), "string"),
        (("artifact_store", "path", "/not/a/bucket"), "artifact_store (s3)"),
        (("artifact_store", "flavor", "s4"), "ZenML has no artifact_store flavor 's4'"),
    ],
)
def test_a_broken_stack_file_names_the_component_and_fault(tmp_path: Path, edit, fault) -> None:
    data = yaml.safe_load((CODE_ROOT / "conf" / "zenml" / "kubernetes.yaml").read_text())
    ctype, key, value = edit
    target = data["components"][ctype]
    (target if key == "flavor" else target["configuration"])[key] = value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    faults = check_stack_file(bad)
    assert len(faults) == 1 and fault in faults[0], faults


def test_gpu_steps_become_zenml_settings() -> None:
    team = yaml.safe_load((CODE_ROOT / "conf" / "stack" / "team.yaml").read_text())
    opts = gpu_step_options(team["gpu_steps"])
    assert opts["settings"]["resources"].gpu_count == 1
    assert opts["settings"]["docker"].parent_image.startswith("pytorch/pytorch:")
    assert gpu_step_options(None) == {}
    with pytest.raises(ConfigError, match=r"stack.gpu_steps: resources.gpu_count"):
        gpu_step_options({"resources": {"gpu_count": "many"}})
    with pytest.raises(ConfigError, match=r"stack.gpu_steps: gpus: Extra inputs"):
        gpu_step_options({"gpus": 1})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "data", "stack=team"], "stack=team: no team stack: run `make stack-up`"),
        (["--pipeline", "tune", "tune.workers=0"], "tune.n_trials, epochs_per_trial, heartbeat_s"),
        (["--pipeline", "tune", "tune.storage=my.db"], "tune.storage must be a database URL"),
        (["--pipeline", "fetch", "fetch.runs=0"], "fetch.threads and fetch.runs must be >= 1"),
    ],
)
def test_team_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = {"YEO_HOME": str(tmp_path)}  # no stack settings there, no YEO_* endpoints set
    env |= dict.fromkeys(("YEO_ZENML_URL", "YEO_MLFLOW_URI", "YEO_BUCKET"), "")
    out = run_cli(*args, env_extra=env)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(re.escape(message), lines[0]), lines
