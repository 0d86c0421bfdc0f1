"""The README's commands, run the way a user types them.

A fresh copy of the project (what a clone holds, including uncommitted work, in a new git
repository, with ``../shared`` beside it) is the workspace: no ``YEO_HOME``, the repository's
own ``dvc.yaml``, subprocesses started in its root. Commands run as written; where one would
take minutes, overrides that shrink it are appended (listed below with each command).
Every command in the README's ``bash`` blocks must be accounted for here: run by this file,
run by another test (named), or not offline (the reason).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CODE_ROOT, SHARED, make_yolo, need_shared, yaml_load

pytestmark = pytest.mark.slow

# README command -> what this file appends to it (None: run by the test named instead)
TINY_TRAIN = (
    "train.imgsz=64 train.epochs=1 train.batch=32 optimize.prune.steps=1 "
    "optimize.prune.finetune_epochs=1 optimize.quant.calib_images=8 optimize.latency.runs=5 "
    "optimize.latency.rounds=2 optimize.latency.warmup=2 "
    "optimize.bundle.benchmark_runs=5 optimize.bundle.golden_images=2 optimize.max_map_drop=1.0 "
    "optimize.allow_vacuous=true optimize.quant.weights_only=false optimize.quant.nncf=off"
)
RUN_HERE = {
    "python run.py --help": "",
    "python run.py --pipeline data data=voc data.path=../shared/datasets/neu-det": "",
    "python run.py --pipeline data data=coco128 data.path=../shared/datasets/coco128": "",
    "python run.py --pipeline data data=yolo data.path=/my/dataset": "",
    "python -m edge.verify edge/bundles/yolov8n-synthetic-v1": "",
    "python -m edge.benchmark edge/bundles/yolov8n-synthetic-v1 --threads 4 --out pi4.json": (
        "--runs 5 --warmup 1"
    ),
    "python -m edge.benchmark merge xeon.json pi4.json --out devices": "",
    "python run.py --pipeline serve": "serve.port=PORT",
    # on the default (synthetic) data, each with the tiny run's overrides but its own
    "python run.py --pipeline train": "TINY",
    "python run.py --pipeline optimize optimize.base_model=models:/yolov8n-synthetic/1": "TINY",
    "python run.py --pipeline optimize optimize.prune.ratio=0.3 optimize.prune.steps=3": "TINY",
}
ELSEWHERE = {
    "make run": "the default job (12-25 min): its pipeline runs in test_optimize_pipeline",
    "make test": "this suite",
    "make test-fast": "this suite's tests not marked slow",
    "python run.py --pipeline data": "test_data_pipeline::test_data_pipeline_end_to_end_offline",
    "python run.py --pipeline data data.synthetic.num_images=1000 data.synthetic.imgsz=320": (
        "test_data_pipeline (the same synthetic overrides, smaller)"
    ),
    "python run.py --pipeline data data=custom data.reader=my_reader:read "
    "data.path=/my/dataset": "test_custom_reader (the README's reader, through the data pipeline)",
    "python run.py --pipeline data data=coco data.path=annotations.json data.images=/my/images": (
        "test_coco_json (a COCO file built from COCO128's labels, through the data pipeline)"
    ),
    "python run.py --pipeline train train=full model.init=pretrained "
    "model.weights=/path/yolov8n.pt": "not offline: pretrained weights from a hub; GPU profile",
    "python run.py --pipeline tune tune.n_trials=20": "test_tune (4 tiny trials)",
    "python run.py --pipeline train train=tuned": "test_tune (writes and composes train=tuned)",
    "python run.py --pipeline optimize": "run below on COCO128 with tiny overrides",
    "python run.py --pipeline data data=yolo data.path=/my/dataset data.on_error=skip": (
        "test_data_pipeline::test_bad_data_fails_with_one_line_and_publishes_nothing"
    ),
    "python run.py --pipeline benchmark": "test_optimize_pipeline (one round, ultralytics peer)",
    "python benchmarks/optimize_ratios.py": "a benchmark (minutes), not a test",
    "python benchmarks/converged.py --base "
    "../shared/fixtures/converged/yolov8n-synthetic-100ep.pt": "a benchmark (20 min), not a test",
    "python benchmarks/prune_curve.py --ratios 0.3 0.5 0.7": (
        "test_optimize_pipeline (one ratio, one fine-tune epoch, on its tiny run)"
    ),
    "python run.py --pipeline optimize optimize=converged "
    "optimize.base_model=path/to/your/best.pt": (
        "test_optimize_pipeline (optimize=converged on its trained base, one scan ratio)"
    ),
    "python run.py --pipeline optimize optimize.prune.distill=6.0": (
        "test_optimize_pipeline (the same override on its tiny run)"
    ),
    "make stack-up": "test_team_stack (python -m yeo.stack up, what it runs)",
    "make run STACK=team": "test_team_stack (the optimize pipeline, stack=team, tiny overrides)",
    "python run.py --pipeline fetch stack=team": "test_team_stack (host B, after A is deleted)",
    "python run.py --pipeline tune stack=team tune.workers=2": (
        "test_team_stack (two workers, one PostgreSQL study)"
    ),
    "make stack-down": "test_team_stack (python -m yeo.stack down; checks nothing is left)",
    'docker build -t yeo-serve . && docker run -p 8000:8000 -v "$PWD/edge/bundles/'
    'yolov8n-synthetic-v1:/bundle:ro" yeo-serve': "no Docker engine here; hadolint in test_serve",
}


def readme_commands() -> list[str]:
    """Every command line in the ``bash`` blocks of the README and the pages it links in
    ``docs/``, comments stripped."""
    pages = [CODE_ROOT / "README.md", *sorted((CODE_ROOT / "docs").glob("*.md"))]
    text = "\n".join(p.read_text() for p in pages)
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [line for block in blocks for line in block.split("\n")]
    return [c for c in (re.sub(r"\s+#.*$", "", ln).strip() for ln in lines) if c]


def test_every_readme_command_is_accounted_for() -> None:
    commands = readme_commands()
    missing = [c for c in commands if c not in RUN_HERE and c not in ELSEWHERE]
    stale = [c for c in (*RUN_HERE, *ELSEWHERE) if c not in commands]
    assert not missing, f"README commands no test runs: {missing}"
    assert not stale, f"commands listed here but gone from the README: {stale}"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh copy of the project as a clone would hold it, with ../shared beside it."""
    need_shared(SHARED)
    top = tmp_path_factory.mktemp("user")
    root = top / "yolo-edge-optimizer"
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=CODE_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = CODE_ROOT / rel
        if src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "fresh clone"], check=True)
    (top / "shared").symlink_to(SHARED.parent, target_is_directory=True)
    return root


def user(root: Path, command: str, extra: str = "", **subs: str) -> subprocess.CompletedProcess:
    """Run a README command in ``root`` as typed (``python`` is this interpreter)."""
    for key, value in subs.items():
        command, extra = command.replace(key, value), extra.replace(key, value)
    argv = shlex.split(command) + shlex.split(extra)
    assert argv[0] == "python"
    env = {k: v for k, v in os.environ.items() if k != "YEO_HOME"} | {"YEO_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, *argv[1:]], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )


def ok(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out.stdout


def dvc_md5(root: Path, name: str) -> str:
    return yaml_load(root / "data" / "processed" / f"{name}.dvc")["outs"][0]["md5"]


def test_readme_data_commands_on_real_and_user_datasets(clone: Path, tmp_path: Path) -> None:
    cmd = dict.fromkeys(RUN_HERE, "")
    assert "--pipeline data" in ok(user(clone, "python run.py --help"))
    for name, source, images, boxes in (
        ("voc", "neu-det", 1800, 4189),
        ("coco128", "coco128", 128, 929),
    ):
        readme = next(c for c in cmd if f"data.path=../shared/datasets/{source}" in c)
        need_shared(SHARED / source)
        out = ok(user(clone, readme))
        assert f"{images} images, {boxes} boxes" in out
        # a new dataset gets its own .dvc file, pushed to the project's remote
        assert f"(data/processed/{name}.dvc)" in out and dvc_md5(clone, name) in out
        assert (clone / ".state" / "dvc-remote").is_dir()

    # the user's own YOLO folder; then the data changes and the same name is versioned again
    mine = make_yolo(tmp_path / "mine", n=16)
    readme = "python run.py --pipeline data data=yolo data.path=/my/dataset"
    ok(user(clone, readme, **{"/my/dataset": str(mine)}))
    first = dvc_md5(clone, "yolo")
    extra = sorted((mine / "images" / "train").glob("*.jpg"))[0]
    shutil.copy(extra, extra.with_name("copy.jpg"))
    label = mine / "labels" / "train" / f"{extra.stem}.txt"
    shutil.copy(label, label.with_name("copy.txt"))
    (extra.with_name("copy.jpg")).write_bytes(extra.read_bytes() + b"\0")  # another sha256
    out = ok(user(clone, readme, **{"/my/dataset": str(mine)}))
    second = dvc_md5(clone, "yolo")
    assert second != first and second in out
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "-c", "data/processed/yolo.dvc"],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0 and "new:" not in status.stdout, status.stdout + status.stderr


def test_readme_optimize_verify_benchmark_serve_on_coco128(clone: Path) -> None:
    """The main job on a real dataset (COCO128: 80 classes, two background images, a
    greyscale one), then the edge tools and the server on the bundle it made."""
    from benchmarks.serve_load import free_port, wait_healthy

    need_shared(SHARED / "coco128")
    out = ok(
        user(
            clone,
            "python run.py --pipeline optimize data=coco128 data.path=../shared/datasets/coco128",
            TINY_TRAIN,
        )
    )
    bundle = "edge/bundles/yolov8n-coco128-v1"
    assert f"bundle       {clone / bundle}" in out
    sub = {"yolov8n-synthetic-v1": "yolov8n-coco128-v1"}
    verify = "python -m edge.verify edge/bundles/yolov8n-synthetic-v1"
    assert "edge.verify: OK" in ok(user(clone, verify, **sub))
    assert "edge.verify: OK" in ok(user(clone, verify + ".tar.gz", **sub))
    bench = "python -m edge.benchmark edge/bundles/yolov8n-synthetic-v1 --threads 4 --out pi4.json"
    ok(user(clone, bench, RUN_HERE[bench], **sub))
    ok(user(clone, bench, RUN_HERE[bench], **sub, **{"pi4.json": "xeon.json"}))
    ok(user(clone, "python -m edge.benchmark merge xeon.json pi4.json --out devices"))
    assert (clone / "devices.md").read_text().count("\n") >= 4

    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k != "YEO_HOME"}
    argv = [sys.executable, "run.py", "--pipeline", "serve", f"serve.port={port}"]
    proc = subprocess.Popen(
        argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata", timeout=10) as r:
            assert b"toothbrush" in r.read()  # the newest bundle: COCO's classes
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def tiny_for(command: str) -> str:
    """The tiny run's overrides (tests/test_optimize_pipeline.py's TINY), less the keys the
    command sets itself: the command's own values are the ones run."""
    from tests.test_optimize_pipeline import TINY

    own = {arg.split("=", 1)[0] for arg in shlex.split(command) if "=" in arg}
    return " ".join(o for o in TINY if o.split("=", 1)[0] not in own)


def test_readme_train_then_optimize_from_the_registry_and_with_other_pruning(
    clone: Path,
) -> None:
    """The README's train command registers a model; its ``models:/`` optimize command takes
    that very registry entry; its pruning command runs with its own ratio and steps."""
    train = "python run.py --pipeline train"
    out = ok(user(clone, train, tiny_for(train)))
    assert "registered   models:/yolov8n-synthetic/1" in out

    def report() -> dict:
        found = (clone / "outputs" / "optimize").glob("*/report.json")
        return json.loads(max(found, key=lambda p: p.stat().st_mtime).read_text())

    registry = "python run.py --pipeline optimize optimize.base_model=models:/yolov8n-synthetic/1"
    ok(user(clone, registry, tiny_for(registry)))
    first = report()
    assert first["config"]["optimize"]["base_model"] == "models:/yolov8n-synthetic/1"
    trained = max((clone / "outputs" / "train").rglob("best.pt"), key=lambda p: p.stat().st_mtime)
    imported = clone / "outputs" / "optimize" / first["run"] / "variants" / "base_pt.pt"
    assert imported.read_bytes() == trained.read_bytes()  # the registry's file, not another

    prune = "python run.py --pipeline optimize optimize.prune.ratio=0.3 optimize.prune.steps=3"
    ok(user(clone, prune, tiny_for(prune)))
    second = report()
    assert second["run"] != first["run"]
    assert second["config"]["optimize"]["prune"]["ratio"] == 0.3
    assert [s["step"] for s in second["prune_steps"]] == [1, 2, 3]
