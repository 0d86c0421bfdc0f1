"""Reading sources: VOC conversion, YOLO layouts, COCO128 offline behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from yeo.data import sources, synthetic
from yeo.data.model import RawSource
from yeo.data.readers import voc, yolo
from yeo.errors import DataError

VOC_XML = """<annotation><filename>{name}</filename>
<size><width>200</width><height>100</height><depth>3</depth></size>
<object><name>{cls}</name><bndbox><xmin>21</xmin><ymin>11</ymin><xmax>61</xmax><ymax>51</ymax>
</bndbox></object></annotation>"""


def _voc(tmp: Path, cls: str = "scratch") -> Path:
    (tmp / "JPEGImages").mkdir(parents=True)
    (tmp / "Annotations").mkdir()
    Image.new("RGB", (200, 100), (90, 90, 90)).save(tmp / "JPEGImages" / "a.jpg")
    (tmp / "Annotations" / "a.xml").write_text(VOC_XML.format(name="a.jpg", cls=cls))
    return tmp


def test_voc_box_matches_hand_computation(tmp_path: Path) -> None:
    # xmin=21 ymin=11 xmax=61 ymax=51 in a 200x100 image, 1-based VOC pixels:
    # cx = ((21+61)/2 - 1)/200 = 40/200 = 0.2 ; cy = ((11+51)/2 - 1)/100 = 0.30
    # w = (61-21)/200 = 0.2 ; h = (51-11)/100 = 0.4
    ds = sources.convert(RawSource(name="v", kind="voc", root=str(_voc(tmp_path))))
    assert ds.names == ["scratch"]
    (img,) = ds.images
    (box,) = img.boxes
    assert (box.cls, box.cx, box.cy, box.w, box.h) == pytest.approx((0, 0.2, 0.3, 0.2, 0.4))
    assert ds.faults == []


def test_voc_unknown_class_is_a_fault(tmp_path: Path) -> None:
    raw = RawSource(name="v", kind="voc", root=str(_voc(tmp_path, "dent")), names=["scratch"])
    ds = sources.convert(raw)
    assert [f.fault for f in ds.faults] == ["unknown class 'dent'"]
    assert ds.faults[0].file.endswith("a.xml")


def test_voc_box_one_pixel_outside_is_clipped_worse_is_kept() -> None:
    cx, _, w, _ = voc.voc_box((100, 100), (0, 10, 50, 20))  # 0-based annotator: xmin=0
    assert cx - w / 2 == pytest.approx(0.0)
    cx, _, w, _ = voc.voc_box((100, 100), (1, 10, 130, 20))  # 29 px past the edge: a fault
    assert cx + w / 2 > 1.2


def test_yolo_label_parsing_reports_each_bad_line(tmp_path: Path) -> None:
    label = tmp_path / "x.txt"
    label.write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n2 a 0.5 0.1 0.1\n\n3 1.5 0.5 0.1 0.1\n")
    boxes, problems = yolo.parse_yolo_label(label)
    assert [b.cls for b in boxes] == [0, 3]  # out-of-range values are left for validation
    assert problems == [
        "line 2: expected 5 fields (class cx cy w h), got 4",
        "line 3: non-numeric value in '2 a 0.5 0.1 0.1'",
    ]


def test_yolo_without_class_list_fails_naming_the_folder(tmp_path: Path, yolo_dataset) -> None:
    (yolo_dataset / "data.yaml").write_text("train: images/train\nval: images/val\n")
    with pytest.raises(DataError, match=r"data\.yaml: no class list"):
        sources.convert(RawSource(name="y", kind="yolo", root=str(yolo_dataset)))


def test_yolo_source_splits_are_kept(yolo_dataset: Path) -> None:
    ds = sources.convert(RawSource(name="y", kind="yolo", root=str(yolo_dataset)))
    assert {i.split for i in ds.images} == {"train", "val"}
    assert len(ds.images) == 12


def test_coco128_offline_without_path_fails_at_once_with_the_fix() -> None:
    cfg = sources.SourceConfig(source="coco128", name="coco128")
    with pytest.raises(DataError, match=r"offline.*data\.path=.*coco128"):
        sources.ingest(cfg, Path("/nonexistent"), offline=True)


def test_missing_path_is_a_one_line_error(tmp_path: Path) -> None:
    cfg = sources.SourceConfig(source="yolo", name="y", path=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no such file or folder"):
        sources.ingest(cfg, tmp_path, offline=True)


def test_ultralytics_pil_patch_is_disarmed(tmp_path: Path) -> None:
    """After ultralytics is imported, a non-image still raises PIL's own error (no pi-heif)."""
    from PIL import UnidentifiedImageError

    sources.coco_names()  # imports ultralytics, which patches PIL.Image.open
    fake = tmp_path / "x.jpg"
    fake.write_text("not an image")
    with pytest.raises(UnidentifiedImageError):
        Image.open(fake)


def test_the_same_data_in_two_checkouts_gives_the_same_tables(tmp_path: Path) -> None:
    """The tables record each image's source relative to the source root, so the processed
    dataset (and its DVC hash) does not depend on where the checkout lies."""
    import shutil

    from tests.conftest import build

    raw = synthetic.generate(tmp_path / "a" / "raw", synthetic.SyntheticSpec(num_images=8))
    shutil.copytree(raw, tmp_path / "elsewhere" / "deeper" / "raw")
    tables = []
    for root, work in ((raw, tmp_path / "a"), (tmp_path / "elsewhere/deeper/raw", tmp_path / "b")):
        staged, report = build(RawSource(name="s", kind="yolo", root=str(root)), work)
        assert report.success
        files = ("images.parquet", "metadata.parquet", "data.yaml")
        tables.append([(staged.staging / f).read_bytes() for f in files])
    assert tables[0] == tables[1]
