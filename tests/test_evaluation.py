"""The one evaluator: same numbers for a .pt and its ONNX export; sane on COCO128."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_TRAIN, yaml_dump
from yeo.evaluation import EvalSettings, evaluate, evaluate_images


def _export_onnx(weights: Path, imgsz: int, out: Path) -> Path:
    from ultralytics import YOLO

    onnx = Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz, simplify=False, opset=17))
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.move(onnx, out))


def test_pt_and_its_onnx_export_agree(trained_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    settings = EvalSettings(imgsz=128, batch=4)
    pt = evaluate(trained_model, tiny_data, settings)
    assert pt.map50 > 0.05, "the session model should detect something"
    onnx = evaluate(_export_onnx(trained_model, 128, tmp_path / "m.onnx"), tiny_data, settings)
    assert onnx.format == "onnx"
    assert abs(pt.map50_95 - onnx.map50_95) < 0.01
    assert abs(pt.map50 - onnx.map50) < 0.01
    assert pt.n_images == onnx.n_images == 6
    assert set(pt.per_class_ap50_95) == set(onnx.per_class_ap50_95)


def test_metrics_are_flat_names_for_mlflow(trained_model: Path, tiny_data: Path) -> None:
    res = evaluate(trained_model, tiny_data, EvalSettings(imgsz=128))
    flat = res.metrics("base/")
    assert {"base/mAP50", "base/mAP50-95", "base/precision", "base/recall"} <= set(flat)
    assert flat["base/mAP50-95"] == res.map50_95 and flat["base/mAP50"] == res.map50
    assert flat["base/precision"] == res.precision and flat["base/recall"] == res.recall
    assert res.map50 > 0.05  # the session model learned (its docstring: mAP50 about 0.35)


def test_evaluator_on_a_coco128_subset(shared_dataset, tmp_path: Path) -> None:
    """An 80-class model on 24 COCO128 images: bounded numbers, per class present."""
    from yeo.data.sources import coco_names
    from yeo.train import trainer
    from yeo.train.config import ModelConfig, TrainConfig

    coco = shared_dataset("coco128")
    images = sorted((coco / "images" / "train2017").glob("*.jpg"))[:24]
    for img in images:
        for kind, suffix in (("images", ".jpg"), ("labels", ".txt")):
            src = coco / kind / "train2017" / f"{img.stem}{suffix}"
            if src.exists():
                (tmp_path / kind).mkdir(exist_ok=True)
                (tmp_path / kind / src.name).symlink_to(src)
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(
        yaml_dump(
            {
                "path": str(tmp_path),
                "train": "images",
                "val": "images",
                "names": dict(enumerate(coco_names())),
            }
        )
    )
    run = trainer.train(data_yaml, TrainConfig.from_dict(TINY_TRAIN), ModelConfig(), tmp_path / "r")
    res, stats = evaluate_images(run.best, data_yaml, EvalSettings(imgsz=64))
    # known values, whatever a 1-epoch model detects: every label of the 24 files is a target
    # of its class, each class with a label is reported, and the bootstrap's stats give the mAP
    labels = [
        int(line.split()[0])
        for label in (tmp_path / "labels").glob("*.txt")
        for line in label.read_text().splitlines()
    ]
    assert res.n_images == 24 and res.n_instances == len(labels)
    assert sorted(np.concatenate(stats.target_cls).astype(int)) == sorted(labels)
    assert set(res.per_class_ap50_95) == {coco_names()[c] for c in labels}
    assert stats.map50_95() == pytest.approx(res.map50_95, abs=1e-9)


def test_missing_model_file_is_named(tiny_data: Path, tmp_path: Path) -> None:
    from yeo.errors import DataError

    with pytest.raises(DataError, match=r"nope\.onnx: model file not found"):
        evaluate(tmp_path / "nope.onnx", tiny_data, EvalSettings(imgsz=64))


def test_openvino_twin_is_scored_on_openvino_as_the_edge_runtime_runs_it(
    onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The backend axis: an ``_ov`` variant is scored through OpenVINO (ultralytics' backend
    over the IR converted from the same file), and that IR computes what the edge runtime's
    OpenVINO engine computes from the ONNX file itself: what chooses is what runs."""
    import openvino as ov

    from edge.engine import load
    from yeo.evaluation import openvino_ir
    from yeo.optimize.export import cut_head

    settings = EvalSettings(imgsz=128, batch=4)
    ort = evaluate(onnx_model, tiny_data, settings)
    on_ov = evaluate(onnx_model, tiny_data, settings, "openvino")
    assert on_ov.format == "openvino" and ort.format == "onnx"
    assert on_ov.n_images == ort.n_images and on_ov.map50 > 0.05
    assert abs(on_ov.map50_95 - ort.map50_95) < 0.02  # bf16 where the CPU has it, else f32
    raw = tmp_path / "raw.onnx"
    cut_head(onnx_model, raw)  # a raw head through the host decode, on OpenVINO too
    raw_ov = evaluate(raw, tiny_data, settings, "openvino")
    assert abs(raw_ov.map50_95 - on_ov.map50_95) < 0.02

    folder = openvino_ir(onnx_model, tmp_path / "ir")
    assert folder.name.endswith("_openvino_model") and (folder / "metadata.yaml").is_file()
    x = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    compiled = ov.Core().compile_model(str(next(folder.glob("*.xml"))), "CPU")
    from_ir = next(iter(compiled(x).values()))
    edge = load(onnx_model, "openvino", 1).run(x)
    np.testing.assert_allclose(from_ir, edge, rtol=0, atol=1e-3 * np.abs(edge).max())
    (tmp_path / "x.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="OpenVINO scores ONNX files only"):
        evaluate(tmp_path / "x.pt", tiny_data, settings, "openvino")
