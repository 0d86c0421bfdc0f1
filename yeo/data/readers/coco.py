"""COCO JSON, as Roboflow, CVAT and Label Studio export it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from PIL import Image

from yeo.data.model import Fault, LabeledBox, SourceDataset, SourceImage
from yeo.errors import DataError

COCO_SPLIT_WORDS = {"train": "train", "val": "val", "valid": "val", "test": "test"}


def _coco_files(root: Path) -> list[Path]:
    """The annotation files: ``root`` itself, or the ``*.json`` in it (or in ``annotations/``)."""
    if root.is_file():
        return [root]
    found = sorted(root.glob("*.json")) or sorted((root / "annotations").glob("*.json"))
    if not found:
        raise DataError(f"{root}: no COCO .json annotation file (nor annotations/*.json)")
    return found


def _coco_split(path: Path) -> str | None:
    """instances_train2017.json -> train; _annotations.coco.json in valid/ -> val."""
    for word in re.split(r"[^a-z]+", f"{path.parent.name} {path.stem}".lower()):
        for key, split in COCO_SPLIT_WORDS.items():
            if word.startswith(key) and (word == key or word[len(key) :].isdigit()):
                return split
    return None


def _load_coco_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise ValueError("not a UTF-8 text file") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError("not a COCO detection file (no 'images' list)")
    if not isinstance(data.get("annotations", []), list):
        raise ValueError("'annotations' must be a list")
    if not isinstance(data.get("categories"), list) or not data["categories"]:
        raise ValueError("no 'categories' list")
    return data


def _coco_categories(files: dict[Path, dict[str, Any]]) -> tuple[list[str], list[int]]:
    """One class list for all files: categories by id (COCO's are 1-based and gappy), mapped
    to contiguous indices in id order; a name given two ids, or an id two names, is refused."""
    by_id: dict[int, str] = {}
    for path, data in files.items():
        for cat in data["categories"]:
            try:
                cid, cname = int(cat["id"]), str(cat["name"])
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    f"{path}: a category needs an integer id and a name: {cat}"
                ) from None
            if by_id.setdefault(cid, cname) != cname:
                raise DataError(f"{path}: category id {cid} is {by_id[cid]!r} in another file")
    ids = sorted(by_id)
    names = [by_id[i] for i in ids]
    if len(set(names)) != len(names):
        raise DataError(f"{next(iter(files))}: two category ids share a name: {names}")
    return names, ids


def _coco_box(ann: dict[str, Any], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Pixel [x, y, w, h] (top-left origin) to normalized cx, cy, w, h; ValueError names the
    fault (not four finite numbers, zero size, outside the image)."""
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ValueError(f"bbox must be [x, y, w, h], got {bbox!r}")
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be four numbers, got {bbox!r}") from None
    if not all(map(math.isfinite, (x, y, w, h))):
        raise ValueError(f"bbox has a non-finite value: {bbox!r}")
    if w <= 0 or h <= 0:
        raise ValueError(f"box of zero size: {bbox!r}")
    iw, ih = size
    tol = 1.0  # exporters round to the pixel: one pixel over the edge is clipped, not a fault
    if x < -tol or y < -tol or x + w > iw + tol or y + h > ih + tol:
        raise ValueError(f"box {bbox!r} outside the {iw}x{ih} image")
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(iw)), min(y + h, float(ih))
    return (x0 + x1) / 2 / iw, (y0 + y1) / 2 / ih, (x1 - x0) / iw, (y1 - y0) / ih


def read_coco(name: str, root: Path, images_dir: Path | None = None) -> SourceDataset:
    """COCO JSON (one file, or a folder of them: each file's split from its name) to the
    canonical form. ``file_name`` resolves under ``images_dir``, else beside the JSON file
    (or in its ``images/``). Crowd boxes are skipped and counted; segmentation is ignored."""
    files: dict[Path, dict[str, Any]] = {}
    faults: list[Fault] = []
    for path in _coco_files(root):
        try:
            files[path] = _load_coco_json(path)
        except (OSError, ValueError) as e:
            faults.append(Fault(file=str(path), fault=f"bad COCO JSON: {e}"))
    if not files:
        raise DataError(faults[0].line().split(None, 1)[1] if faults else f"{root}: no COCO JSON")
    names, ids = _coco_categories(files)
    index = {cid: i for i, cid in enumerate(ids)}
    images: list[SourceImage] = []
    seen: dict[str, str] = {}  # image file -> the annotation file that listed it
    for path, data in files.items():
        split = _coco_split(path) if len(files) > 1 else None
        base = images_dir or next(
            (d for d in (path.parent / "images", path.parent) if d.is_dir()), path.parent
        )

        def fault(text: str, image: str | None = None, severity: str = "error", at=path) -> None:
            """A fault of this annotation file (``image``: the record it drops)."""
            faults.append(Fault(file=str(at), fault=text, image=image, severity=severity))

        entries: dict[int, SourceImage] = {}
        sizes: dict[int, tuple[int, int]] = {}
        for n, rec in enumerate(data["images"]):
            where = f"image id {rec.get('id')!r} ({rec.get('file_name')!r})"
            # ``image`` names the record a fault drops: with on_error=skip it is skipped
            record = f"{path}#images[{n}]"
            try:
                iid, fname = int(rec["id"]), str(rec["file_name"])
            except (KeyError, TypeError, ValueError):
                fault(f"{where}: needs an id and file_name", record)
                continue
            if iid in entries:
                fault(f"duplicate image id {iid}: {where}", record)
                continue
            img = base / fname
            if not img.is_file():
                img = base / Path(fname).name  # exporters often keep a sub-folder prefix
            if not img.is_file():
                fault(f"{where}: no such file {base / fname}", record)
                continue
            if str(img) in seen:
                fault(f"{where}: also listed in {seen[str(img)]}", record)
                continue
            seen[str(img)] = str(path)
            try:
                sizes[iid] = (int(rec["width"]), int(rec["height"]))
            except (KeyError, TypeError, ValueError):
                with Image.open(img) as im:
                    sizes[iid] = im.size
            entries[iid] = SourceImage(path=str(img), label_file=str(path), split=split)
        crowd = 0
        for n, ann in enumerate(data.get("annotations", [])):
            where = f"annotation {ann.get('id', f'#{n}')!r}" if isinstance(ann, dict) else f"#{n}"
            if not isinstance(ann, dict):
                fault(f"{where}: not an object", f"{path}#annotations[{n}]")
                continue
            iid = ann.get("image_id")
            if iid not in entries:
                known = any(r.get("id") == iid for r in data["images"] if isinstance(r, dict))
                why = "an image that is missing or faulty" if known else "an unknown image id"
                fault(f"{where}: for {why} ({iid!r})", f"{path}#annotations[{n}]")
                continue
            entry = entries[iid]
            if ann.get("iscrowd"):
                crowd += 1
                continue
            if ann.get("category_id") not in index:
                fault(f"{where}: unknown category id {ann.get('category_id')!r}", entry.path)
                continue
            try:
                cx, cy, w, h = _coco_box(ann, sizes[iid])
            except ValueError as e:
                fault(f"{where}: {e}", entry.path)
                continue
            entry.boxes.append(LabeledBox(cls=index[ann["category_id"]], cx=cx, cy=cy, w=w, h=h))
        if crowd:
            fault(f"{crowd} crowd (iscrowd) boxes skipped", severity="warning")
        images += entries.values()
    return SourceDataset(
        name=name, root=str(root), names=names, images=images, faults=faults, class_ids=ids
    )
