"""Edge bundles on Arm64 under user-mode emulation (yeo.arm64): onnxruntime's Arm kernels
against the x86 golden outputs. Correctness only: nothing here is timed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge import bundle, bundle_format
from tests.conftest import BUNDLE_META, SHARED, need_shared
from yeo import arm64

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def arm_env() -> arm64.Arm64Env:
    """The aarch64 environment, built once outside the repository (about 30 s)."""
    try:
        return arm64.ensure()
    except arm64.Arm64Unavailable as e:
        if os.environ.get("CI"):  # .ci/run installs qemu-user-static and debootstrap
            pytest.fail(f"Arm64 emulation must run in CI: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def int8_bundle(
    arm_env: arm64.Arm64Env, onnx_model: Path, tiny_data: Path, tmp_path_factory
) -> Path:
    """The default path's kind of bundle (default INT8 recipe, cut at the head, decoded on the
    host), built with the Arm64 observer on."""
    from yeo.optimize.dataset import split_images
    from yeo.optimize.export import cut_head
    from yeo.optimize.quantize import calibration_images, quantize
    from yeo.optimize.recipes import DEFAULT_RECIPES

    work = tmp_path_factory.mktemp("arm")
    calib = calibration_images(split_images(tiny_data.parent, "train"), 16, seed=0)
    int8 = quantize(onnx_model, work / "int8.onnx", DEFAULT_RECIPES[0], calib, 128)
    cut_head(int8, work / "raw.onnx")
    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:4]
    meta = BUNDLE_META | {"precision": "int8"}
    dest, _ = bundle.build(
        work / "raw.onnx",
        work / "out" / "tiny-int8-v1",
        meta,
        images,
        benchmark_runs=2,
        observers=arm64.observer("on"),
    )
    return dest


def test_the_bundle_records_its_deviation_on_arm64(int8_bundle: Path) -> None:
    golden = json.loads((int8_bundle / "golden" / "golden.json").read_text())
    seen, tol = golden["observed"]["arm64_emulated"], golden["tolerance"]
    assert seen["box_px"] <= tol["box_atol_px"] and seen["score"] <= tol["score_atol"], seen
    assert set(seen["files"]) == {"model.onnx", "model.ort", "model.arm.ort"}
    assert seen["onnxruntime"] == arm64.ONNXRUNTIME and seen["cpu"].startswith(
        "cortex-a72 (aarch64"
    )
    assert seen["timing"].startswith("none: user-mode emulation")  # never read as a speed
    # the Arm ORT-format model, in the manifest and the metadata, checked here too
    meta = json.loads((int8_bundle / "metadata.json").read_text())
    arm = meta["model"]["ort_format"]["arm"]
    assert arm["target_platform"] == "arm" and arm["sha256"] == bundle.sha256(
        int8_bundle / "model.arm.ort"
    )
    assert "model.arm.ort" in (int8_bundle / bundle_format.MANIFEST).read_text()
    assert golden["observed"]["ort_format_arm"]["score"] <= tol["score_atol"]
    assert not list(int8_bundle.rglob("__pycache__"))  # the emulated run wrote nothing into it


def test_verify_passes_on_a_second_arm_cpu_and_fails_on_a_changed_output(
    int8_bundle: Path, arm_env: arm64.Arm64Env, tmp_path: Path
) -> None:
    """Neoverse-N1 has the dot-product instructions Cortex-A72 lacks: other int8 kernels. The
    same check fails, naming the file, when a golden output is off the tolerance."""
    rep = arm64.verify(int8_bundle, "neoverse-n1", arm_env)
    assert rep["ok"] and rep["machine"] == "aarch64", rep["faults"]
    assert set(rep["errors"]) == {"model.onnx", "model.ort", "model.arm.ort"}
    bad = tmp_path / "bad"
    shutil.copytree(int8_bundle, bad)
    path = bad / "golden" / "000.output.npz"
    arrays = dict(np.load(path))
    arrays["arr_1"] = arrays["arr_1"] + 3.0  # every class logit of level 0 up by 3
    np.savez(path, **arrays)
    bundle_format.write_manifest(bad)
    why = r"fails on Arm64 \(emulated cortex-a72, .*golden/000.output: model output off tolerance"
    with pytest.raises(bundle.PortabilityError, match=why):
        arm64.observed(bad, env=arm_env)


def test_a_bundle_built_on_another_cpu_kind_verifies_on_arm64(
    arm_env: arm64.Arm64Env, tmp_path: Path
) -> None:
    """../shared/fixtures/cross-cpu: the default run's bundle, built on an Intel Xeon."""
    import tarfile

    archive = need_shared(
        SHARED.parent / "fixtures/cross-cpu/yolov8n-synthetic-v1-xeon-vnni.tar.gz"
    )
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    rep = arm64.verify(tmp_path / "yolov8n-synthetic-v1", "cortex-a72", arm_env)
    assert rep["ok"], rep["faults"]
    assert rep["errors"]["model.onnx"]["anchors"] > 0  # it compared something


def test_arm64_unavailable_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    """auto without a built environment records why; on refuses; both in one line."""
    monkeypatch.setenv("YEO_ARM64_HOME", str(tmp_path / "none"))
    why = "no aarch64 environment at .*none|Arm64 emulation needs"  # or this machine lacks qemu
    with pytest.raises(arm64.Arm64Unavailable, match=why):
        arm64.ensure(build=False)
    (run,) = arm64.observer("auto").values()
    assert run(tmp_path).startswith("not run: ")
    assert arm64.observer("off") == {}
