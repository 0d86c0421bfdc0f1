"""The synthetic surface-defect generator: deterministic, sane, not trivial."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from yeo.data.readers.yolo import parse_yolo_label
from yeo.data.synthetic import CLASS_NAMES, SyntheticSpec, generate, render


def _digest(folder: Path, pattern: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob(pattern)}


def test_same_seed_gives_byte_identical_labels(tmp_path: Path) -> None:
    spec = SyntheticSpec(num_images=16, imgsz=96, seed=7)
    a, b = generate(tmp_path / "a", spec), generate(tmp_path / "b", spec)
    labels_a = _digest(a / "labels", "*.txt")
    assert len(labels_a) == 16
    assert labels_a == _digest(b / "labels", "*.txt")
    assert _digest(a / "images", "*.jpg") == _digest(b / "images", "*.jpg")
    other = generate(tmp_path / "c", SyntheticSpec(num_images=16, imgsz=96, seed=8))
    assert _digest(other / "labels", "*.txt") != labels_a


def test_image_i_does_not_depend_on_image_count() -> None:
    _, few = render(SyntheticSpec(num_images=3, seed=1), 2)
    _, many = render(SyntheticSpec(num_images=300, seed=1), 2)
    assert few == many


def test_labels_are_sane_and_varied(tmp_path: Path) -> None:
    out = generate(tmp_path / "s", SyntheticSpec(num_images=60, imgsz=128, seed=0))
    per_image, classes, sizes = [], set(), []
    for label in sorted((out / "labels").glob("*.txt")):
        boxes, problems = parse_yolo_label(label)
        assert problems == []
        per_image.append(len(boxes))
        for b in boxes:
            assert 0 <= b.cls < len(CLASS_NAMES)
            assert 0 < b.w <= 1 and 0 < b.h <= 1
            assert b.cx - b.w / 2 >= -1e-6 and b.cx + b.w / 2 <= 1 + 1e-6
            assert b.cy - b.h / 2 >= -1e-6 and b.cy + b.h / 2 <= 1 + 1e-6
            classes.add(b.cls)
            sizes.append(b.w * b.h)
    assert classes == set(range(len(CLASS_NAMES)))  # every class appears
    assert 0 in per_image  # some defect-free images
    assert max(per_image) >= 3  # several defects per image
    assert np.percentile(sizes, 90) > 4 * np.percentile(sizes, 10)  # varied sizes
    img = Image.open(next((out / "images").glob("*.jpg")))
    assert img.size == (128, 128) and img.mode == "RGB"


def test_defects_change_the_pixels_inside_their_boxes() -> None:
    """Each box covers a visible defect: against the same background rendered clean (same
    seed, no defects), pixels change inside every box and hardly at all outside them."""
    from yeo.data.synthetic import _background

    spec = SyntheticSpec(seed=5, imgsz=128)
    checked = 0
    for i in range(20):
        img, boxes = render(spec, i)
        if not boxes:
            continue
        clean = _background(np.random.default_rng([spec.seed, i]), 128)  # drawn first
        arr = np.asarray(img, np.float32).mean(axis=2)
        outside = np.ones_like(arr, bool)
        spans = []
        for _c, cx, cy, w, h in boxes:
            x0, x1 = int((cx - w / 2) * 128), int(np.ceil((cx + w / 2) * 128))
            y0, y1 = int((cy - h / 2) * 128), int(np.ceil((cy + h / 2) * 128))
            outside[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2] = False
            spans.append((slice(y0, y1), slice(x0, x1)))
        valid = outside & (clean > 5) & (clean < 240)  # away from clipping
        tint = np.median(arr[valid] / clean[valid])  # the image's colour tint, about 1.0
        diff = np.abs(arr - tint * clean)
        assert diff[valid].mean() < 2.0, diff[valid].mean()  # clean where there is no box
        for span in spans:
            assert diff[span].max() > 10.0, (i, diff[span].max())  # a defect in every box
        checked += len(boxes)
    assert checked >= 10
