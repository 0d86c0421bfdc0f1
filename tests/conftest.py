"""Test fixtures. The whole session runs in a temporary workspace (``YEO_HOME``), offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["YEO_HOME"] = tempfile.mkdtemp(prefix="yeo-tests-")
os.environ.setdefault("YEO_OFFLINE", "1")
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    # share the cores between workers (and the run.py processes they start) rather than
    # oversubscribe them: torch's OpenMP pool spins on busy cores
    share = str(max(1, (os.cpu_count() or 1) // workers))
    os.environ.setdefault("OMP_NUM_THREADS", share)
    # ultralytics' select_device resets torch to its own count (yeo.env: every core), not
    # OpenMP's: without this each worker's training ran on both cores
    os.environ.setdefault("YEO_TORCH_THREADS", share)

from yeo import env

WS = env.configure()
CODE_ROOT = env.CODE_ROOT
SHARED = CODE_ROOT.parent / "shared" / "datasets"

from yeo.data import etl, sources, synthetic, validation  # noqa: E402
from yeo.data.model import StagedDataset, ValidationReport  # noqa: E402
from yeo.io import write_yaml  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(os.environ["YEO_HOME"], ignore_errors=True)


def once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(folder)`` once per test session, also across pytest-xdist workers (``make test``
    runs two): the first worker builds under a file lock, the others wait and reuse it."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of one run
    folder, done = root / f"once-{name}", root / f"once-{name}.path"
    with FileLock(str(root / f"once-{name}.lock")):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            done.write_text(str(build(folder)))
    return Path(done.read_text())


def need_shared(path: Path) -> Path:
    """``path`` under ../shared: a test without it is skipped on a developer's machine, and
    fails under ``CI=true``, where the clone always has ../shared beside it."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def shared_dataset():
    """Path of a dataset in ../shared/datasets (see :func:`need_shared`)."""

    def get(name: str) -> Path:
        return need_shared(SHARED / name)

    return get


def make_yolo(root: Path, n: int = 12, imgsz: int = 64, seed: int = 3, splits: bool = True) -> Path:
    """A small valid YOLO dataset: data.yaml with train/val folders (or flat images/+labels/)."""
    raw = root / "_gen"
    synthetic.generate(raw, synthetic.SyntheticSpec(num_images=n, imgsz=imgsz, seed=seed))
    images = sorted((raw / "images").glob("*.jpg"))
    for i, img in enumerate(images):
        split = ("val" if i % 4 == 0 else "train") if splits else ""
        for kind, src in (("images", img), ("labels", raw / "labels" / f"{img.stem}.txt")):
            dst = root / kind / split / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    shutil.rmtree(raw)
    data = {"names": dict(enumerate(synthetic.CLASS_NAMES))}
    if splits:
        data.update(train="images/train", val="images/val")
    write_yaml(root / "data.yaml", data)
    return root


@pytest.fixture
def yolo_dataset(tmp_path: Path) -> Path:
    return make_yolo(tmp_path / "ds")


def build(
    raw: sources.RawSource,
    tmp: Path,
    on_error: str = "fail",
    split: dict[str, float] | None = None,
) -> tuple[StagedDataset, ValidationReport]:
    """ingest -> convert -> ETL -> validate with the plain functions (no ZenML)."""
    ds = sources.convert(raw)
    cfg = etl.EtlConfig(max_side=640, split=split or {"train": 0.75, "val": 0.25}, seed=0)
    staged = etl.stage(ds, tmp / "staging", tmp / "processed", cfg)
    report = validation.validate(staged, tmp / "report", on_error)
    return staged, report


def run_cli(
    *args: str,
    env_extra: dict[str, str] | None = None,
    guard: Path | None = None,
    script: Path = CODE_ROOT / "run.py",
):
    """Run ``run.py`` (or another ``script``) in a subprocess, optionally under the network
    guard."""
    cmd = [sys.executable]
    environ = {**os.environ, **(env_extra or {})}
    if guard is not None:
        cmd += ["-m", "tests.netguard"]
        environ["NETGUARD_LOG"] = str(guard)
    cmd += [str(script), *args]
    return subprocess.run(
        cmd, cwd=CODE_ROOT, env=environ, capture_output=True, text=True, timeout=600
    )


TINY_TRAIN = {
    "imgsz": 64,
    "epochs": 1,
    "batch": 8,
    "workers": 0,
    "device": "cpu",
    "seed": 0,
    "mosaic": 0.0,
    "close_mosaic": 0,
    "warmup_epochs": 0.0,
}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A processed synthetic dataset (24 images at 128 px, high-contrast defects)."""
    return once(tmp_path_factory, "tiny", _tiny_data)


def _tiny_data(root: Path) -> Path:
    spec = synthetic.SyntheticSpec(num_images=24, imgsz=128, seed=11, max_defects=3, contrast=3)
    raw = synthetic.generate(root / "raw", spec)
    ds = sources.convert(sources.RawSource(name="tiny", kind="yolo", root=str(raw)))
    cfg = etl.EtlConfig(split={"train": 0.75, "val": 0.25}, seed=0)
    staged = etl.stage(ds, root / "processed", root / "unused", cfg)
    return staged.staging / "data.yaml"


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, tiny_data: Path) -> Path:
    """A small YOLOv8n that detects something: trained once per session.

    Validation here runs on the training images too (overfitting is the point: the evaluator
    tests need boxes to compare, not a good detector). 80 epochs (360 iterations), not 40:
    on an AMD EPYC (AVX2) 40 epochs left every score below 0.005 (mAP50 0.20), while 80 gave
    mAP50 0.35 with scores up to 0.74, so the golden cases and comparisons hold on any CPU.
    """
    return once(tmp_path_factory, "model", lambda root: _train(root, tiny_data))


def _train(root: Path, tiny_data: Path) -> Path:
    from yeo.train import trainer
    from yeo.train.config import ModelConfig, TrainConfig

    data = yaml_load(tiny_data)
    data["val"] = data["train"]
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml_dump({**data, "path": str(tiny_data.parent)}))
    cfg = TrainConfig.from_dict(
        TINY_TRAIN
        | {
            "imgsz": 128,
            "epochs": 80,
            "batch": 4,
            "lr0": 0.01,
            "optimizer": "AdamW",
            "flipud": 0.0,
            "fliplr": 0.0,
            "scale": 0.0,
            "translate": 0.0,
            "hsv_v": 0.0,
        }
    )
    outcome = trainer.train(data_yaml, cfg, ModelConfig(), root / "run")
    return outcome.best


@pytest.fixture(scope="session")
def onnx_model(trained_model: Path, tmp_path_factory) -> Path:
    """The session model as an FP32 ONNX file (ultralytics export, metadata kept)."""
    from yeo.optimize.export import export_onnx

    return once(
        tmp_path_factory, "onnx", lambda root: export_onnx(trained_model, root / "m.onnx", 128).path
    )


BUNDLE_META = {
    "name": "tiny",
    "version": "v1",
    "precision": "fp32",
    "classes": {0: "scratch", 1: "pits", 2: "stain", 3: "crack"},
    "thresholds": {"conf": 0.01, "iou": 0.7},
    "source": {"data_dvc_hash": "test"},
}


@pytest.fixture(scope="session")
def edge_bundle(onnx_model: Path, tiny_data: Path, tmp_path_factory) -> Path:
    """An edge bundle of the session model with 8 golden cases (low conf: it is weak)."""
    from edge import bundle

    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:8]
    dest, _ = bundle.build(
        onnx_model,
        tmp_path_factory.mktemp("bundle") / "tiny-v1",
        BUNDLE_META,
        images,
        card=lambda m: f"# {m['name']}\n",
        benchmark_runs=5,
    )
    return dest


@pytest.fixture(scope="session")
def cpp_port(tmp_path_factory) -> Path:
    """``edge/cpp`` built with CMake and the system C++ compiler."""
    if not (shutil.which("cmake") and shutil.which("c++")):
        if os.environ.get("CI"):
            pytest.fail("cmake and a C++ compiler are missing in CI: .ci/run installs them")
        pytest.skip("cmake or a C++ compiler missing")
    return once(tmp_path_factory, "cpp", _cmake)


def _cmake(build: Path) -> Path:
    for cmd in (
        ["cmake", "-S", str(CODE_ROOT / "edge" / "cpp"), "-B", str(build)],
        ["cmake", "--build", str(build)],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return build / "yeo_port"


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def yaml_dump(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)
