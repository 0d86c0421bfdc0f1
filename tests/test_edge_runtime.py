"""edge runtime vs ultralytics predict on the same ONNX file; NMS on hand-made boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.postprocess import decode, nms
from edge.runtime import Detector


def test_nms_on_hand_made_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]  # 0 and 1 overlap 3 by > 0.5


def test_decode_is_class_aware() -> None:
    out = np.zeros((1, 6, 2), np.float32)  # two identical boxes, different classes
    out[0, :4, :] = [[50], [50], [20], [20]]
    out[0, 4, 0], out[0, 5, 1] = 0.9, 0.8
    boxes, _scores, cls = decode(out, conf=0.25, iou=0.5)
    assert sorted(cls.tolist()) == [0, 1] and len(boxes) == 2


def test_edge_matches_ultralytics_predict(onnx_model: Path, tiny_data: Path) -> None:
    from ultralytics import YOLO

    images = sorted((tiny_data.parent / "images" / "train").glob("*.jpg"))[:8]
    detector = Detector(onnx_model, conf=0.05, iou=0.7)
    reference = YOLO(str(onnx_model), task="detect")
    compared = sum(_compare(detector, reference, str(p), p.name, 128, 0.05) for p in images)
    assert compared > 0, "the session model found nothing to compare"


def _compare(detector: Detector, reference, image, name: str, imgsz: int, conf: float) -> int:
    """Assert edge and ultralytics agree on one image: same count, and each of our boxes has
    its own same-class ultralytics box within 1 px (matched, so equal scores may come in
    either order). Returns the number compared."""
    ours = detector(image)
    (theirs,) = reference.predict(image, imgsz=imgsz, conf=conf, iou=0.7, verbose=False)
    assert len(ours) == len(theirs.boxes), name
    boxes, classes = theirs.boxes.xyxy.numpy(), theirs.boxes.cls.numpy().astype(int)
    free = np.ones(len(boxes), bool)
    for d in sorted(ours, key=lambda d: -d.score):
        err = np.abs(boxes - np.array(d.box)).max(axis=1)
        err[~free | (classes != d.class_id)] = np.inf
        best = int(err.argmin())
        assert err[best] <= 1.0, f"{name}: {d} vs nearest {boxes[best]} ({err[best]:.2f} px)"
        free[best] = False
    return len(ours)


@pytest.mark.parametrize(
    ("dataset", "pattern"), [("coco128", "images/train2017/*.jpg"), ("neu-det", "IMAGES/*.jpg")]
)
def test_edge_matches_ultralytics_on_real_images(
    onnx_model: Path, shared_dataset, dataset: str, pattern: str
) -> None:
    """Non-square, greyscale and large real images: letterbox, decode and NMS all agree."""
    from ultralytics import YOLO

    root = shared_dataset(dataset)
    images = sorted(root.glob(pattern))[:12]
    grey = root / "images" / "train2017" / "000000000086.jpg"  # COCO128's greyscale image
    images += [grey] if grey.is_file() else []
    detector = Detector(onnx_model, conf=0.001, iou=0.7)  # a synthetic-trained model: low scores
    reference = YOLO(str(onnx_model), task="detect")
    compared = sum(_compare(detector, reference, str(p), p.name, 128, 0.001) for p in images)
    assert compared > 0, f"no detections on {dataset} to compare"
