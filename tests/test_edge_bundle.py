"""Edge bundle: build, verify (and each fault it must catch), benchmark CLI and merge."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import bundle, bundle_format
from edge.verify import verify
from tests.conftest import BUNDLE_META as META


@pytest.fixture(scope="module")
def built(edge_bundle: Path) -> Path:
    assert edge_bundle.with_name("tiny-v1.tar.gz").is_file()
    return edge_bundle


def _edge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_bundle_layout_and_self_contained_verify(built: Path) -> None:
    for name in (
        "model.onnx",
        "model.ort",
        "required_operators.config",
        "model.arm.ort",
        "required_operators.arm.config",
        "edge/PORTING.md",
        "labels.txt",
        "metadata.json",
        "MODEL_CARD.md",
        "benchmark.json",
        "MANIFEST.sha256",
        "golden/golden.json",
        "golden/000.input.npy",
        "golden/000.rgb.npy",
        "edge/runtime.py",
        "edge/verify.py",
    ):
        assert (built / name).is_file(), name
    meta = json.loads((built / "metadata.json").read_text())
    assert meta["input"]["shape"] == [1, 3, 128, 128] and meta["format"] == bundle_format.FORMAT
    assert meta["input"]["name"] == "images" and meta["output"]["shape"] == [1, 8, 336]
    assert meta["model"]["sha256"] == bundle.sha256(built / "model.onnx")
    assert meta["model"]["ort_format"]["sha256"] == bundle.sha256(built / "model.ort")
    assert "Conv" in (built / "required_operators.config").read_text()  # e.g. FusedConv
    assert (built / "labels.txt").read_text().split() == ["scratch", "pits", "stain", "crack"]
    golden = json.loads((built / "golden" / "golden.json").read_text())
    assert sum(c["detections"] for c in golden["cases"]) > 0  # the cases exercise NMS
    tol = golden["tolerance"]  # measured beside it: other ways to run the same model
    for other in ("unfused_reference", "onnxruntime_1_thread", "ort_format", "ort_format_arm"):
        seen = golden["observed"][other]
        assert seen["box_px"] <= tol["box_atol_px"] and seen["score"] <= tol["score_atol"]
    assert (
        subprocess.run(["sha256sum", "-c", "--quiet", "MANIFEST.sha256"], cwd=built).returncode == 0
    )
    # the bundle's own copy of edge/ verifies it, from inside the bundle
    out = _edge("edge.verify", ".", cwd=built)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("edge.verify: OK") and "8 golden cases" in out.stdout
    # all three checked against the golden cases (the Arm ORT model runs on x86 too)
    assert "x model.onnx + model.ort + model.arm.ort" in out.stdout
    out = _edge("edge.verify", str(built.with_name("tiny-v1.tar.gz")))
    assert out.returncode == 0, out.stderr


def _broken(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _changed_byte(b: Path) -> None:
    data = bytearray((b / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (b / "model.onnx").write_bytes(bytes(data))


def _off_tolerance(b: Path) -> None:  # expected outputs edited and the manifest re-signed
    out = np.load(b / "golden" / "000.output.npy")
    np.save(b / "golden" / "000.output.npy", out + np.float32(3.0))
    bundle_format.write_manifest(b)


def _other_model(b: Path) -> None:  # a different model, re-signed: golden outputs catch it
    from onnx import load, numpy_helper, save

    model = load(str(b / "model.onnx"))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 0.5, init.name))
    save(model, str(b / "model.onnx"))
    bundle_format.write_manifest(b)


def test_verify_port_checks_a_ports_dumps_stage_by_stage(built: Path, tmp_path: Path) -> None:
    """A port that dumps what the golden cases hold passes; one pixel row shifted in its
    input tensor, or a lost detection, is named by case and stage."""
    from edge.preprocess import load_image, preprocess

    golden = json.loads((built / "golden" / "golden.json").read_text())
    case = golden["cases"][0]
    rgb = np.load(built / "golden" / "000.rgb.npy")  # the decoded image, for a port's tests
    assert rgb.dtype == np.uint8 and rgb.shape == (case["height"], case["width"], 3)
    assert np.array_equal(rgb, np.asarray(load_image(built / "golden" / case["image"])))
    x, _ = preprocess(load_image(built / "golden" / case["image"]), 128)
    assert np.array_equal(x, np.load(built / "golden" / "000.input.npy"))

    port = tmp_path / "port"
    port.mkdir()
    for f in (built / "golden").iterdir():
        if f.name.endswith((".input.npy", ".output.npy", ".output.npz", ".detections.json")):
            shutil.copy(f, port / f.name)
    out = _edge("edge.verify", str(built), "--port", str(port))
    assert out.returncode == 0, out.stderr
    n = len(golden["cases"])
    assert f"{n} of {n} golden cases match at every stage" in out.stdout

    x = np.load(port / "000.input.npy")
    np.save(port / "000.input.npy", np.roll(x, 1, axis=2))  # one pixel row down
    out = _edge("edge.verify", str(built), "--port", str(port))
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert "case 000" in line and "stage input" in line and "first bad row" in line, line

    np.save(port / "000.input.npy", x)
    busy = max(golden["cases"], key=lambda c: c["detections"])
    stem = Path(busy["image"]).stem
    dets = json.loads((port / f"{stem}.detections.json").read_text())
    top = max(dets, key=lambda d: d["score"])
    (port / f"{stem}.detections.json").write_text(json.dumps([d for d in dets if d != top]))
    out = _edge("edge.verify", str(built), "--port", str(port))
    assert out.returncode == 1
    assert f"case {stem}" in out.stderr and "stage detections" in out.stderr, out.stderr


def _other_ort(b: Path) -> None:
    """model.ort converted from another model (halved weights); model.onnx stays right."""
    work = b.parent / "ort-work"
    work.mkdir()
    shutil.copy(b / "model.onnx", work / "model.onnx")
    _other_model(work)
    shutil.copy(bundle.ort_format(work / "model.onnx"), b / "model.ort")
    bundle_format.write_manifest(b)


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        (_changed_byte, "model.onnx: SHA-256 differs"),
        (_other_ort, "model.ort: golden/"),
        (
            lambda b: (b / "labels.txt").unlink(),
            "labels.txt: listed in MANIFEST.sha256 but missing",
        ),
        (lambda b: (b / "extra.bin").write_bytes(b"x"), "extra.bin: not listed"),
        (lambda b: (b / "MANIFEST.sha256").unlink(), "MANIFEST.sha256: missing"),
        (_off_tolerance, "golden/000.output: model output off tolerance"),
        (_other_model, "off tolerance"),
    ],
)
def test_verify_names_each_fault(built: Path, tmp_path: Path, fault, expect: str) -> None:
    b = _broken(built, tmp_path)
    fault(b)
    faults, _ = verify(b)
    assert faults and any(expect in f for f in faults), faults
    out = _edge("edge.verify", str(b))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert expect in out.stderr and out.stderr.startswith("edge.verify: FAIL")


def test_golden_outputs_are_judged_on_anchors_that_decoding_keeps(built: Path, tmp_path: Path):
    """Noise on anchors below the threshold (in both runs) is no fault; a shift of one kept
    anchor's box by 3 px (over the 0.5 px FP32 tolerance) is."""
    conf = json.loads((built / "golden" / "golden.json").read_text())["conf"]
    b = _broken(built, tmp_path)
    path = b / "golden" / "000.output.npy"
    out = np.load(path)
    kept = out[0, 4:].max(axis=0) >= conf
    assert kept.any() and not kept.all()
    noisy = out.copy()
    noisy[0, :4, ~kept] += 50.0  # boxes of discarded anchors: decode never reads them
    np.save(path, noisy)
    bundle_format.write_manifest(b)
    faults, summary = verify(b)
    assert not faults, faults
    assert f"anchors scoring >= {conf}" in summary
    shifted = out.copy()
    shifted[0, 1, np.flatnonzero(kept)[0]] += 3.0
    np.save(path, shifted)
    bundle_format.write_manifest(b)
    faults, _ = verify(b)
    assert any("000.output: model output off tolerance on anchors" in f for f in faults)


def test_golden_records_the_unfused_reference_and_refuses_cpu_dependent_int8(
    built: Path, onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """golden.json says how far the exact-arithmetic run is from the golden outputs; an INT8
    model whose fused kernels saturate here (full-range weights, no VNNI) is not bundled."""
    from edge.device import describe
    from yeo.optimize.dataset import split_images
    from yeo.optimize.quantize import calibration_images, quantize
    from yeo.optimize.recipes import EXTRA_RECIPES

    golden = json.loads((built / "golden" / "golden.json").read_text())
    seen, tol = golden["observed"]["unfused_reference"], golden["tolerance"]
    # the session bundle is FP32: fused and unfused kernels differ by float rounding only
    assert tol == bundle.TOLERANCE["fp32"]
    assert seen["box_px"] < 0.01 and seen["score"] < 1e-4, seen
    if any("VNNI" in f for f in describe()["isa"]):
        pytest.skip("VNNI CPU: full-range INT8 does not saturate here")
    calib = calibration_images(split_images(tiny_data.parent, "train"), 16, seed=0)
    full = next(r for r in EXTRA_RECIPES if r.weights == "full")
    model = quantize(onnx_model, tmp_path / "w8.onnx", full, calib, 128)
    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:8]
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(bundle.PortabilityError, match="depend on the CPU"):
        bundle.build(model, out / "w8-v1", META | {"precision": "int8"}, images, benchmark_runs=2)
    assert list(out.iterdir()) == []


def test_failed_build_leaves_nothing(onnx_model: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        bundle.build(onnx_model, tmp_path / "x-v1", META, [tmp_path / "missing.jpg"])
    assert list(tmp_path.iterdir()) == []  # no folder, no temp dir, no half archive


def test_benchmark_cli_and_merge(built: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    out = _edge("edge.benchmark", str(built), "--runs", "5", "--warmup", "1", "--out", str(a))
    assert out.returncode == 0, out.stderr
    assert "| model " in out.stdout and "| end to end " in out.stdout
    rep = json.loads(a.read_text())
    assert rep["schema"] == "yeo-edge-benchmark/1" and rep["model_ms"]["runs"] == 5
    # end to end = letterbox + model + decode/NMS of each run: never faster than its parts
    e2e, pre, post = rep["end_to_end_ms"], rep["preprocess_ms"], rep["postprocess_ms"]
    # per run, so its fastest run is slower than the fastest parts together (not compared with
    # the model-only loop: timed apart, first, after one warm-up, it ran 2x slower than the
    # model inside the end-to-end runs beside a second test worker)
    assert pre["min_ms"] > 0 and post["min_ms"] > 0
    assert e2e["min_ms"] > pre["min_ms"] + post["min_ms"]
    assert rep["device"]["usable_cores"] >= 1 and rep["device"]["runtimes"]["onnxruntime"]
    assert rep["settings"]["images"].startswith("8 golden")
    out = _edge(
        "edge.benchmark",
        str(built / "model.onnx"),
        "--runs",
        "3",
        "--threads",
        "1",
        "--out",
        str(b),
    )
    assert out.returncode == 0, out.stderr
    out = _edge("edge.benchmark", "merge", str(a), str(b), "--out", str(tmp_path / "table"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 4  # header, rule, two rows
    assert (tmp_path / "table.csv").read_text().count("\n") == 3
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other/9"}')
    out = _edge("edge.benchmark", "merge", str(a), str(bad))
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0
    assert "bad.json: not an edge benchmark report" in out.stderr
    archive = built.with_name("tiny-v1.tar.gz")
    out = _edge("edge.benchmark", str(archive), "--runs", "2", "--warmup", "0")
    assert out.returncode == 0 and f"model        {archive}" in out.stdout, out.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    out = _edge("edge.benchmark", str(corrupt))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "corrupt.onnx: onnxruntime cannot load it" in out.stderr.strip().splitlines()[-1]
    out = _edge("edge.benchmark", str(tmp_path / "nope.onnx"))
    assert out.returncode == 1 and "nope.onnx: no such model file" in out.stderr


def test_detections_match_one_to_one_with_their_scores() -> None:
    """A duplicate left by a broken NMS, or a score off by more than the tolerance, is a fault;
    a box within tolerance and a detection near the threshold are not."""
    from edge.verify import check_detections

    tol = {"box_atol_px": 2.0, "score_atol": 0.05}
    det = {"class_id": 1, "class_name": "pits", "score": 0.8, "box": [10.0, 10.0, 50.0, 50.0]}
    moved = {**det, "box": [11.0, 10.0, 51.0, 50.5], "score": 0.79}
    assert check_detections([det], [moved], 0.25, tol, 1.0) is None
    weak = {**det, "box": [100.0, 100.0, 120.0, 120.0], "score": 0.27}  # within 0.05 of conf
    assert check_detections([det, weak], [moved], 0.25, tol, 1.0) is None
    problem = check_detections([det], [det, moved], 0.25, tol, 1.0)
    assert problem and "a duplicate" in problem and problem.startswith("produced"), problem
    problem = check_detections([det], [{**det, "score": 0.5}], 0.25, tol, 1.0)
    assert problem and "scores 0.500 (tolerance 0.05)" in problem, problem
    problem = check_detections([det], [{**det, "class_id": 2}], 0.25, tol, 1.0)
    assert problem and "no box of its class" in problem, problem
    # a bundle chosen on OpenVINO (bf16): NMS kept the other of two near-tied anchors of one
    # object (the default run's golden case: 6 px off, IoU 0.81): a match above the NMS IoU
    swapped = {**det, "box": [4.0, 9.0, 48.0, 53.0]}  # IoU 0.75 with det
    problem = check_detections([det], [swapped], 0.25, tol, 1.0)
    assert problem and "no box of its class within tolerance" in problem, problem
    assert check_detections([det], [swapped], 0.25, tol, 1.0, swap_iou=0.7) is None
    apart = {**det, "box": [20.0, 20.0, 60.0, 60.0]}  # IoU 0.39: another object, still a fault
    assert check_detections([det], [apart], 0.25, tol, 1.0, swap_iou=0.7)
    problem = check_detections([det], [swapped, swapped], 0.25, tol, 1.0, swap_iou=0.7)
    assert problem and "a duplicate" in problem, problem  # one to one, still


def test_a_bundle_built_on_another_cpu_kind_verifies_here(tmp_path: Path) -> None:
    """../shared/fixtures/cross-cpu: the default run's bundle from an Intel Xeon with
    AVX512-VNNI and AMX; edge.verify on this CPU, whatever its kind, must pass."""
    from tests.conftest import CODE_ROOT, SHARED, need_shared

    archive = need_shared(
        SHARED.parent / "fixtures/cross-cpu/yolov8n-synthetic-v1-xeon-vnni.tar.gz"
    )
    shutil.copy(archive, tmp_path / archive.name)  # verify extracts beside the archive
    out = _edge("edge.verify", str(tmp_path / archive.name), cwd=CODE_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "edge.verify: OK" in out.stdout


def test_a_cpu_dependent_int8_model_is_refused_on_every_cpu(
    onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The pipeline's bundle step checks INT8 weights statically (pair_overflows), so a
    full-range model is refused on a VNNI CPU too, where its fused kernels do not saturate
    and the build's own comparison cannot see the problem; the default recipe passes."""
    from yeo.bundle import check_portable
    from yeo.errors import UserError
    from yeo.optimize.dataset import split_images
    from yeo.optimize.quantize import calibration_images, quantize
    from yeo.optimize.recipes import DEFAULT_RECIPES, EXTRA_RECIPES

    calib = calibration_images(split_images(tiny_data.parent, "train"), 8, seed=0)
    full = next(r for r in EXTRA_RECIPES if r.weights == "full")
    model = quantize(onnx_model, tmp_path / "full.onnx", full, calib, 128)
    with pytest.raises(UserError, match=r"full.onnx: its outputs would depend on the CPU"):
        check_portable(model)
    check_portable(quantize(onnx_model, tmp_path / "safe.onnx", DEFAULT_RECIPES[0], calib, 128))


def test_a_bundle_chosen_on_openvino_runs_and_verifies_there(
    onnx_model: Path, tiny_data: Path, tmp_path: Path, monkeypatch
) -> None:
    """The backend axis' bundle: metadata.json declares OpenVINO; the golden outputs stay
    onnxruntime's (every port's reference) with a tolerance that covers OpenVINO's bf16;
    edge.verify checks model.onnx on OpenVINO too, and the runtime and benchmark run it there
    (falling back to onnxruntime, said, where OpenVINO is missing)."""
    import edge.runtime
    import edge.verify
    from edge.runtime import Detector

    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:3]
    meta = META | {"runtime": {"backend": "openvino", "computes_in": "bf16"}}
    dest, _ = bundle.build(onnx_model, tmp_path / "ov-v1", meta, images, benchmark_runs=2)
    golden = json.loads((dest / "golden" / "golden.json").read_text())
    tol = golden["tolerance"]
    assert tol == bundle.tolerance("fp32", "openvino") and tol["box_atol_px"] == 3.0
    assert tol["nms_swaps"] and "nms_swaps" not in bundle.tolerance("int8")
    assert bundle.tolerance("fp32") == bundle.TOLERANCE["fp32"]
    seen = golden["observed"]["openvino_default"]  # what the bundle runs, off the golden files
    assert seen["box_px"] <= tol["box_atol_px"] and seen["score"] <= tol["score_atol"]
    faults, summary = verify(dest)
    assert not faults, faults
    assert "model.onnx + model.ort + model.arm.ort + model.onnx@openvino" in summary, summary
    assert json.loads((dest / "benchmark.json").read_text())["settings"]["backend"] == "openvino"
    assert Detector(dest).engine.backend == "openvino"
    assert Detector(dest / "model.onnx").engine.backend == "onnxruntime"  # a file: no declaration
    # a machine without OpenVINO: the runtime says so and runs onnxruntime; verify says what
    # it could not check
    monkeypatch.setattr(edge.runtime, "installed", lambda backend: False)
    monkeypatch.setattr(edge.verify, "installed", lambda backend: False)
    with pytest.warns(UserWarning, match="chosen on openvino, not installed here"):
        assert Detector(dest).engine.backend == "onnxruntime"
    faults, summary = verify(dest)
    assert not faults and summary.endswith(
        "not checked on openvino, the backend it was chosen on: not installed here"
    )
    # an unknown backend in metadata.json is one named fault
    broken = tmp_path / "bad"
    shutil.copytree(dest, broken)
    meta_file = broken / "metadata.json"
    meta_file.write_text(meta_file.read_text().replace('"openvino"', '"tensorrt"'))
    bundle_format.write_manifest(broken)
    faults, _ = verify(broken)
    assert faults == [
        f"{broken}/metadata.json: runtime.backend must be onnxruntime or openvino, got "
        "{'backend': 'tensorrt', 'computes_in': 'bf16'}"
    ]


def test_a_weights_only_int8_bundle_verifies_on_openvino(
    onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """A ``_w8`` variant's bundle: int8 Conv weights, float activations, chosen on OpenVINO;
    its golden tolerance is FP32's (float arithmetic) widened for OpenVINO's bf16, and
    edge.verify passes on both backends."""
    from yeo.optimize.quantize import quantize_weights

    w8 = quantize_weights(onnx_model, tmp_path / "w8.onnx")
    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:3]
    meta = META | {"precision": "w8", "runtime": {"backend": "openvino", "computes_in": "bf16"}}
    dest, _ = bundle.build(w8, tmp_path / "w8-v1", meta, images, benchmark_runs=2)
    golden = json.loads((dest / "golden" / "golden.json").read_text())
    assert golden["tolerance"] == bundle.tolerance("w8", "openvino")
    assert bundle.tolerance("w8") == bundle.TOLERANCE["fp32"]
    assert (dest / "model.onnx").stat().st_size < 0.3 * onnx_model.stat().st_size
    faults, summary = verify(dest)
    assert not faults, faults
    assert "model.onnx@openvino" in summary, summary
