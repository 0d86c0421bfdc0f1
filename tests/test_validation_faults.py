"""Planted faults: each is caught, with the file at fault named, and nothing is published."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import build
from yeo.data import sources
from yeo.data.model import RawSource
from yeo.errors import DataError


def _raw(root: Path) -> RawSource:
    return RawSource(name="t", kind="yolo", root=str(root))


def _first(root: Path, kind: str, split: str = "train") -> Path:
    suffix = "*.jpg" if kind == "images" else "*.txt"
    return sorted((root / kind / split).glob(suffix))[0]


def _image_of(path: Path) -> Path:
    """The image a label file belongs to (row-level faults name the image)."""
    if path.suffix != ".txt":
        return path
    return path.parents[2] / "images" / path.parent.name / f"{path.stem}.jpg"


def _truncate(root: Path) -> Path:
    img = _first(root, "images")
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    return img


def _not_an_image(root: Path) -> Path:
    img = _first(root, "images")
    img.write_text("this is not a JPEG\n")
    return img


def _label_line(text: str) -> Callable[[Path], Path]:
    def plant(root: Path) -> Path:
        label = _first(root, "labels")
        label.write_text(label.read_text() + text + "\n")
        return label

    return plant


def _duplicate_across_splits(root: Path) -> Path:
    src = _first(root, "images", "train")
    dst = root / "images" / "val" / "copy_of_train.jpg"
    shutil.copy(src, dst)
    shutil.copy(_first(root, "labels", "train"), root / "labels" / "val" / "copy_of_train.txt")
    return dst


# (planted fault, what the report must say, is the named file the image (True) or the label)
FAULTS = {
    "truncated_jpeg": (_truncate, "cannot decode image", "image"),
    "non_image_jpg": (_not_an_image, "not an image file", "image"),
    "four_fields": (_label_line("1 0.5 0.5 0.2"), "expected 5 fields", "label"),
    "non_numeric": (_label_line("1 0.5 abc 0.2 0.2"), "non-numeric value", "label"),
    "box_outside": (_label_line("1 0.95 0.5 0.3 0.2"), "box outside the image", "image"),
    "zero_width": (_label_line("1 0.5 0.5 0.0 0.2"), "box w=0 must be in (0, 1]", "image"),
    "class_id_too_big": (_label_line("4 0.5 0.5 0.2 0.2"), "class id 4 outside 0..3", "image"),
    "duplicate_train_val": (_duplicate_across_splits, "more than one split", "image"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_planted_fault_is_caught_and_named(fault: str, yolo_dataset: Path, tmp_path: Path) -> None:
    plant, message, _ = FAULTS[fault]
    bad_file = plant(yolo_dataset)
    _, report = build(_raw(yolo_dataset), tmp_path / "out")
    assert not report.success
    errors = [(Path(f.file).resolve(), f.fault) for f in report.errors]
    if fault == "duplicate_train_val":  # both copies are named
        assert {p.name for p, _ in errors} == {bad_file.name, _first(yolo_dataset, "images").name}
    else:
        named = _image_of(bad_file) if FAULTS[fault][2] == "image" else bad_file
        assert [p for p, _ in errors] == [named.resolve()], errors
    assert all(message in m for _, m in errors), errors
    md = (tmp_path / "out" / "report" / "validation.md").read_text()
    assert "FAILED" in md and bad_file.name.split(".")[0] in md


@pytest.mark.parametrize("fault", ["truncated_jpeg", "four_fields", "class_id_too_big"])
def test_on_error_skip_drops_the_bad_file(fault: str, yolo_dataset: Path, tmp_path: Path) -> None:
    FAULTS[fault][0](yolo_dataset)
    staged, report = build(_raw(yolo_dataset), tmp_path / "out", on_error="skip")
    assert report.success, [f.line() for f in report.errors]
    assert len(report.dropped_images) == 1
    assert report.n_images == 11
    assert any("(skipped)" in f.fault for f in report.warnings)
    assert len(list((staged.staging / "images").rglob("*.jpg"))) == 11


def test_empty_dataset_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "e" / "images").mkdir(parents=True)
    (tmp_path / "e" / "data.yaml").write_text("names: [a]\n")
    with pytest.raises(DataError, match="no images found"):
        build(_raw(tmp_path / "e"), tmp_path / "out")


def test_missing_class_list_is_named(yolo_dataset: Path, tmp_path: Path) -> None:
    (yolo_dataset / "data.yaml").write_text("train: images/train\nval: images/val\n")
    with pytest.raises(DataError, match=rf"{yolo_dataset / 'data.yaml'}: no class list"):
        build(_raw(yolo_dataset), tmp_path / "out")


def test_an_empty_split_fails_the_dataset(yolo_dataset: Path, tmp_path: Path) -> None:
    _, report = build(RawSource(name="t", kind="yolo", root=str(yolo_dataset)), tmp_path / "o1")
    assert report.success
    flat = sources.convert(_raw(yolo_dataset)).model_copy()
    for img in flat.images:
        img.split = "train"
    from yeo.data import etl, validation

    staged = etl.stage(flat, tmp_path / "o2" / "s", tmp_path / "o2" / "p", etl.EtlConfig())
    report = validation.validate(staged, tmp_path / "o2" / "r")
    assert not report.success
    assert [f.fault for f in report.errors] == [
        "split(s) ['val'] are empty; add images or change data.split"
    ]


def test_clean_dataset_passes_and_writes_docs(yolo_dataset: Path, tmp_path: Path) -> None:
    _staged, report = build(_raw(yolo_dataset), tmp_path / "out")
    assert report.success and report.errors == []
    assert report.n_images == 12
    assert Path(report.data_docs).is_file()
    assert all(r["success"] for r in report.expectations)
    assert len(report.expectations) >= 20
