"""Head cut + host decode (speed lever 1): the graph cut at the Detect head's output convs and
decoded in numpy gives what ultralytics' in-graph decode gives, FP32 and INT8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.engine import session
from edge.postprocess import decode, decode_raw_head, raw_head_candidates, xywh2xyxy
from yeo.optimize.export import cut_head, image_batch, onnx_metadata


def _outputs(model: Path, x: np.ndarray) -> list[np.ndarray]:
    sess = session(model, 1)
    return sess.run(None, {sess.get_inputs()[0].name: x})


def _images(tiny_data: Path) -> list[Path]:
    return sorted((tiny_data.parent / "images" / "val").glob("*.jpg"))[:4]


def _check_pair(model: Path, raw: Path, strides: list[int], tiny_data: Path) -> None:
    for x in image_batch(_images(tiny_data), 128):
        full, parts = _outputs(model, x)[0], _outputs(raw, x)
        # every anchor: the host decode is ultralytics' decode (DFL expectation, dist2bbox)
        boxes, scores, cls = raw_head_candidates(parts, strides, 0.0)
        assert np.abs(boxes - xywh2xyxy(full[0].T[:, :4])).max() < 1e-3
        assert np.abs(scores - full[0, 4:].max(0)).max() < 1e-5
        top2 = np.sort(full[0, 4:], axis=0)[-2:]
        clear = top2[1] - top2[0] > 1e-6  # near-ties may round either way through the sigmoid
        assert np.array_equal(cls[clear], full[0, 4:].argmax(0)[clear])
        # after thresholding and NMS: the same detections
        a, b = decode(full, 0.05, 0.7), decode_raw_head(parts, strides, 0.05, 0.7)
        assert len(a[0]) == len(b[0]) and np.array_equal(a[2], b[2])
        assert not len(a[0]) or np.abs(a[0] - b[0]).max() < 1e-3


def test_fp32_head_cut_decodes_like_the_in_graph_head(
    onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "raw.onnx"
    info = cut_head(onnx_model, raw)
    assert info["strides"] == [8, 16, 32] and info["imgsz"] == 128
    shapes = [o.shape for o in _outputs(raw, np.zeros((1, 3, 128, 128), np.float32))]
    assert shapes == [
        (1, 64, 16, 16),
        (1, 4, 16, 16),
        (1, 64, 8, 8),
        (1, 4, 8, 8),
        (1, 64, 4, 4),
        (1, 4, 4, 4),
    ]
    meta, _ = onnx_metadata(raw)
    assert meta["names"] == onnx_metadata(onnx_model)[0]["names"] and meta["strides"] == [8, 16, 32]
    _check_pair(onnx_model, raw, info["strides"], tiny_data)


def test_int8_head_cut_keeps_the_requantized_outputs(
    onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from yeo.optimize.quantize import calibration_images, quantize
    from yeo.optimize.recipes import DEFAULT_RECIPES

    calib = calibration_images(
        sorted((tiny_data.parent / "images" / "train").glob("*.jpg")), 8, seed=0
    )
    int8 = quantize(onnx_model, tmp_path / "int8.onnx", DEFAULT_RECIPES[0], calib, 128)
    info = cut_head(int8, tmp_path / "raw.onnx")
    assert all(o.endswith("DequantizeLinear_Output") for o in info["outputs"])
    _check_pair(int8, tmp_path / "raw.onnx", info["strides"], tiny_data)


def test_a_model_without_a_detect_head_is_named(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match=r"relu.onnx: no YOLOv8 Detect head convs"):
        cut_head(path, tmp_path / "out.onnx")


def test_raw_head_scores_and_detects_like_the_in_graph_head(
    onnx_model: Path, trained_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The evaluator scores a raw-head model through the edge runtime's decode: mAP50-95
    within 0.001 of the in-graph model, and the Detector finds the same boxes within 1 px."""
    from edge.runtime import Detector
    from yeo.evaluation import EvalSettings, evaluate

    raw = tmp_path / "raw.onnx"
    cut_head(onnx_model, raw)
    ev = EvalSettings(imgsz=128)
    data = tiny_data.with_name("train_as_val.yaml")
    data.write_text(tiny_data.read_text().replace("val: images/val", "val: images/train"))
    graph, cut = evaluate(onnx_model, data, ev), evaluate(raw, data, ev)
    assert graph.map50_95 > 0.05  # a model that detects: the comparison means something
    assert abs(graph.map50_95 - cut.map50_95) < 1e-3 and abs(graph.map50 - cut.map50) < 1e-3
    a, b = Detector(onnx_model, conf=0.05), Detector(raw, conf=0.05)
    assert b.strides == [8, 16, 32] and a.strides is None
    found = 0
    for image in sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:6]:
        da, db = a(image), b(image)
        assert [d.class_id for d in da] == [d.class_id for d in db]
        for x, y in zip(da, db, strict=True):
            assert max(abs(p - q) for p, q in zip(x.box, y.box, strict=True)) < 1.0
        found += len(da)
    assert found


def test_a_raw_head_bundle_describes_its_outputs_and_verifies(
    onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from edge import bundle, bundle_format
    from edge.verify import verify
    from tests.conftest import BUNDLE_META

    raw = tmp_path / "raw.onnx"
    cut_head(onnx_model, raw)
    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:4]
    dest, _ = bundle.build(raw, tmp_path / "raw-v1", BUNDLE_META, images, benchmark_runs=2)
    meta = bundle_format.read_json(dest / "metadata.json")
    out = meta["output"]
    assert out["layout"] == "raw_head" and out["reg_max"] == 16 and out["strides"] == [8, 16, 32]
    assert [t["kind"] for t in out["tensors"][:2]] == ["box_distribution", "class_logits"]
    assert [t["shape"] for t in out["tensors"][:2]] == [[1, 64, 16, 16], [1, 4, 16, 16]]
    golden = bundle_format.load_output(dest / "golden" / "000")
    assert isinstance(golden, list) and len(golden) == 6
    faults, summary = verify(dest)
    assert not faults and "4 golden cases" in summary
    # a changed raw output is caught on the anchors that decode
    with np.load(dest / "golden" / "000.output.npz") as z:
        parts = [z[f"arr_{i}"] for i in range(6)]
    parts[1] = parts[1] + np.float32(5.0)  # every class logit of level 0 up: new confident boxes
    np.savez(dest / "golden" / "000.output.npz", *parts)
    (dest / bundle_format.MANIFEST).unlink()
    bundle_format.write_manifest(dest)
    faults, _ = verify(dest)
    assert any("golden/000.output: model output off tolerance" in f for f in faults), faults
