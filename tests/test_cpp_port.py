"""The C++17 reference (edge/cpp/) builds with the system compiler and passes
``edge.verify --port``: every golden input tensor bit-exact, detections within tolerance from
the golden raw outputs, for both output layouts (in-graph decode and raw head)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUNDLE_META, CODE_ROOT

pytestmark = pytest.mark.slow


def run_port(binary: Path, bundle: Path, port: Path) -> None:
    """A port's harness: for each golden case, the model's outputs (the reference does not run
    the model) go to the C++ decode, which also preprocesses the decoded golden image."""
    meta = json.loads((bundle / "metadata.json").read_text())
    golden = json.loads((bundle / "golden" / "golden.json").read_text())
    port.mkdir(parents=True, exist_ok=True)
    th = meta["thresholds"]
    for case in golden["cases"]:
        stem = Path(case["image"]).stem
        g = bundle / "golden"
        opts = {
            "--rgb": g / f"{stem}.rgb.npy",
            "--size": meta["input"]["shape"][-1],
            "--conf": repr(float(th["conf"])),
            "--iou": repr(float(th["iou"])),
            "--names": bundle / "labels.txt",
            "--out": port / stem,
        }
        args = [str(binary), *(str(x) for kv in opts.items() for x in kv)]
        if meta["output"].get("layout") == "raw_head":
            z = np.load(g / f"{stem}.output.npz")
            files = []
            for i in range(len(z.files)):
                files.append(str(port / f"{stem}.raw{i}.npy"))
                np.save(files[-1], z[f"arr_{i}"])
            strides = ",".join(str(s) for s in meta["output"]["strides"])
            args += ["--raw-head", strides, "--output", ",".join(files)]
            shutil.copy(g / f"{stem}.output.npz", port)
        else:
            args += ["--output", str(g / f"{stem}.output.npy")]
            shutil.copy(g / f"{stem}.output.npy", port)
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert np.array_equal(  # bit-exact preprocessing
            np.load(port / f"{stem}.input.npy"), np.load(g / f"{stem}.input.npy")
        ), stem


def verify_port(bundle: Path, port: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.verify", str(bundle), "--port", str(port)],
        cwd=CODE_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cpp_reference_passes_verify_port_in_graph(
    cpp_port: Path, edge_bundle: Path, tmp_path: Path
) -> None:
    run_port(cpp_port, edge_bundle, tmp_path / "port")
    out = verify_port(edge_bundle, tmp_path / "port")
    assert out.returncode == 0, out.stderr
    assert "8 of 8 golden cases match at every stage" in out.stdout
    dets = json.loads((tmp_path / "port" / "000.detections.json").read_text())
    want = json.loads((edge_bundle / "golden" / "000.detections.json").read_text())
    assert len(dets) == len(want) > 0  # the same NMS result, not just within tolerance


def test_cpp_reference_passes_verify_port_raw_head(
    cpp_port: Path, onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from edge import bundle
    from yeo.optimize.export import cut_head

    raw = tmp_path / "raw.onnx"
    cut_head(onnx_model, raw)
    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:4]
    dest, _ = bundle.build(raw, tmp_path / "raw-v1", BUNDLE_META, images, benchmark_runs=2)
    run_port(cpp_port, dest, tmp_path / "port")
    out = verify_port(dest, tmp_path / "port")
    assert out.returncode == 0, out.stderr
    assert "4 of 4 golden cases match at every stage" in out.stdout
