"""Real datasets from ../shared/datasets (skipped when absent): NEU-DET (VOC) and COCO128."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.conftest import build
from yeo.data.etl import read_tables
from yeo.data.model import RawSource
from yeo.data.sources import coco_names

NEU_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


def test_neu_det_all_files_ingest_and_validate(shared_dataset, tmp_path: Path) -> None:
    root = shared_dataset("neu-det")
    staged, report = build(RawSource(name="neu", kind="voc", root=str(root)), tmp_path)
    assert report.success, [f.line() for f in report.errors[:5]]
    assert staged.names == NEU_CLASSES
    assert (report.n_images, report.n_boxes) == (1800, 4189)
    assert report.class_counts and sum(report.class_counts.values()) == 4189
    images, boxes = read_tables(staged.staging)
    assert set(images["split"]) == {"train", "val"}
    assert (images["width"] == 200).all() and (images["height"] == 200).all()
    # no identical image in two splits; boxes normalized and inside
    assert images.groupby("sha256")["split"].nunique().max() == 1
    assert ((boxes["cx"] - boxes["w"] / 2) >= -1e-6).all()
    assert ((boxes["cx"] + boxes["w"] / 2) <= 1 + 1e-6).all()


def test_coco128_messy_parts_pass_with_warnings(shared_dataset, tmp_path: Path) -> None:
    root = shared_dataset("coco128")
    staged, report = build(RawSource(name="coco", kind="coco128", root=str(root)), tmp_path)
    assert report.success, [f.line() for f in report.errors[:5]]
    assert staged.names == coco_names() and len(staged.names) == 80
    assert (report.n_images, report.n_boxes) == (128, 929)
    warned = {(Path(f.file).stem, f.fault) for f in report.warnings}
    for stem in ("000000000250", "000000000508"):
        assert (stem, "no label file: kept as a background image") in warned
    for stem in ("000000000656", "000000000659"):
        assert (stem, "label file without an image: skipped") in warned
    assert ("000000000086", "greyscale: converted to RGB") in warned
    images, _ = read_tables(staged.staging)
    grey = images[images["source"].str.endswith("000000000086.jpg")].iloc[0]
    assert grey["channels"] == 1 and grey["source_mode"] == "L"
    assert int((images["n_boxes"] == 0).sum()) == 2  # the two background images
    assert isinstance(images, pd.DataFrame) and images["image"].is_unique
