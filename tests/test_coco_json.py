"""COCO JSON in: a COCO file built here from COCO128's YOLO labels reads back to the same boxes;
planted faults are each named; ``--pipeline data`` runs on it. (``--pipeline optimize`` starts
with the same data steps on the same config and reads only the processed dataset after them:
COCO128 runs through it in test_readme.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import SHARED, need_shared, run_cli, yaml_load
from yeo.data import sources
from yeo.data.readers import coco, yolo
from yeo.errors import DataError

CATEGORY_ID = [1 + 2 * i for i in range(80)]  # COCO's ids are 1-based with gaps: so are ours


def coco_from_yolo(yolo_root: Path, out: Path, limit: int | None = None) -> dict:
    """COCO JSON from a YOLO folder (images/<split>/ + labels/<split>/): pixel xywh boxes."""
    names = sources.coco_names()
    images, annotations = [], []
    files = sorted((yolo_root / "images").rglob("*.jpg"))[:limit]
    for iid, img in enumerate(files, 1):
        with Image.open(img) as im:
            w, h = im.size
        images.append({"id": iid, "file_name": img.name, "width": w, "height": h})
        label = yolo_root / "labels" / img.parent.name / f"{img.stem}.txt"
        for line in label.read_text().splitlines() if label.is_file() else []:
            c, cx, cy, bw, bh = line.split()
            box = [
                (float(cx) - float(bw) / 2) * w,
                (float(cy) - float(bh) / 2) * h,
                float(bw) * w,
                float(bh) * h,
            ]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": iid,
                    "category_id": CATEGORY_ID[int(c)],
                    "bbox": [round(v, 3) for v in box],
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": CATEGORY_ID[i], "name": n} for i, n in enumerate(names)],
    }
    out.write_text(json.dumps(data))
    return data


@pytest.fixture(scope="module")
def coco128(request) -> Path:
    return need_shared(SHARED / "coco128")


def test_coco_json_reads_back_the_yolo_boxes(coco128: Path, tmp_path: Path) -> None:
    ann = tmp_path / "instances.json"
    coco_from_yolo(coco128, ann)
    images = coco128 / "images" / "train2017"
    ds = coco.read_coco("c", ann, images)
    ref = yolo.read_yolo("y", coco128, sources.coco_names())
    assert ds.names == ref.names and ds.class_ids == CATEGORY_ID
    assert not [f for f in ds.faults if f.severity == "error"], ds.faults[:3]
    by_path = {i.path: i for i in ref.images}
    assert len(ds.images) == len(ref.images) == 128
    for img in ds.images:
        want = sorted((b.cls, b.cx, b.cy, b.w, b.h) for b in by_path[img.path].boxes)
        got = sorted((b.cls, b.cx, b.cy, b.w, b.h) for b in img.boxes)
        assert len(got) == len(want), img.path
        for g, w in zip(got, want, strict=True):
            assert g[0] == w[0]
            assert all(abs(a - b) < 2e-3 for a, b in zip(g[1:], w[1:], strict=True)), img.path


def test_a_folder_of_annotation_files_keeps_their_splits(coco128: Path, tmp_path: Path) -> None:
    data = coco_from_yolo(coco128, tmp_path / "all.json")
    folder = tmp_path / "export" / "annotations"
    folder.mkdir(parents=True)
    val_ids = {img["id"] for img in data["images"][:30]}
    for name, keep in (("instances_train2017", False), ("instances_val2017", True)):
        part = {
            "images": [i for i in data["images"] if (i["id"] in val_ids) == keep],
            "annotations": [a for a in data["annotations"] if (a["image_id"] in val_ids) == keep],
            "categories": data["categories"],
        }
        (folder / f"{name}.json").write_text(json.dumps(part))
    ds = coco.read_coco("c", folder.parent, coco128 / "images" / "train2017")
    splits = [img.split for img in ds.images]
    assert splits.count("val") == 30 and splits.count("train") == 98


def test_every_planted_fault_is_named(coco128: Path, tmp_path: Path) -> None:
    images = coco128 / "images" / "train2017"
    data = coco_from_yolo(coco128, tmp_path / "clean.json", limit=8)
    first = data["images"][0]
    data["images"].append({**first, "file_name": "gone.jpg", "id": 900})
    data["images"].append({**data["images"][1]})  # duplicate id
    anns = data["annotations"]
    anns.append({**anns[0], "id": 1001, "image_id": 777})  # no such image
    anns.append({**anns[0], "id": 1002, "category_id": 2})  # even: not a category
    anns.append({**anns[0], "id": 1003, "bbox": [first["width"] - 5, 0, 50, 10]})  # outside
    anns.append({**anns[0], "id": 1004, "bbox": [5, 5, 0, 10]})  # zero width
    anns.append({**anns[0], "id": 1005, "iscrowd": 1})
    anns.append({**anns[0], "id": 1006, "iscrowd": 1})
    ann = tmp_path / "faulty.json"
    ann.write_text(json.dumps(data))
    ds = coco.read_coco("c", ann, images)
    found = "\n".join(f.line() for f in ds.faults)
    for expected in (
        r"image id 900 \('gone.jpg'\): no such file",
        r"duplicate image id 2",
        r"annotation 1001: for an unknown image id \(777\)",
        r"annotation 1002: unknown category id 2",
        r"annotation 1003: box \[.*\] outside the \d+x\d+ image",
        r"annotation 1004: box of zero size",
        r"WARNING .*2 crowd \(iscrowd\) boxes skipped",
    ):
        assert re.search(expected, found), (expected, found)
    assert len(ds.images) == 8

    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataError, match=r"broken.json: bad COCO JSON: not valid JSON at line 2"):
        coco.read_coco("c", broken, images)


@pytest.mark.slow
def test_data_pipeline_on_coco_json(coco128: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    ann = tmp_path / "instances.json"
    data = coco_from_yolo(coco128, ann)
    images = str(coco128 / "images" / "train2017")
    env = {"YEO_HOME": str(root)}
    common = [f"data.path={ann}", f"data.images={images}", "data.max_side=128"]
    out = run_cli("--pipeline", "data", "data=coco", *common, env_extra=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "128 images" in out.stdout
    assert f"read         128 images, {len(data['annotations'])} boxes from {ann}" in out.stdout
    dy = yaml_load(root / "data" / "processed" / "coco" / "data.yaml")
    assert dy["source_class_ids"][79] == CATEGORY_ID[79] and dy["names"][0] == "person"
    # a fault in the file fails validation with one line: the reader names each fault
    # (test_every_planted_fault_is_named), run.py's line for them is test_data_pipeline's
