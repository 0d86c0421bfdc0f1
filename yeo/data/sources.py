"""Ingest and convert: find a source's raw files and read its annotations into one form.

Six kinds of source: ``synthetic`` (generated here), ``yolo`` (a data.yaml, or images/ +
labels/), ``voc`` (images + Pascal VOC XML), ``coco`` (COCO JSON, as Roboflow, CVAT and Label
Studio export), ``coco128`` (fetched as ultralytics does when online, else a local copy) and
``custom`` (a user's own reader function, ``data.reader=package.module:function``).
Label problems become :class:`Fault` records, not exceptions, so validation can report every
bad file at once; only a source that cannot be read at all raises.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DefusedET
import yaml
from PIL import Image

from yeo.data import synthetic
from yeo.data.model import Fault, LabeledBox, RawSource, SourceDataset, SourceImage
from yeo.env import configure_ultralytics
from yeo.errors import DataError, ReaderError

IMG_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
COCO128_YAML = "coco128.yaml"


@dataclass(frozen=True)
class SourceConfig:
    """The ``data`` config group, as plain values."""

    source: str
    name: str
    path: str | None = None
    images: str | None = None
    names: list[str] | None = None
    reader: str | None = None
    synthetic: synthetic.SyntheticSpec | None = None


# --------------------------------------------------------------------------- ingest


def ingest(cfg: SourceConfig, raw_root: Path, offline: bool) -> RawSource:
    """Locate (or generate, or download) the raw files of the configured source."""
    kind = cfg.source
    if kind == "synthetic":
        spec = cfg.synthetic or synthetic.SyntheticSpec()
        out = raw_root / cfg.name
        synthetic.generate(out, spec)
        return RawSource(name=cfg.name, kind="synthetic", root=str(out), generated=True)
    if kind == "coco128":
        return RawSource(
            name=cfg.name, kind="coco128", root=str(_coco128_root(cfg.path, offline)), names=None
        )
    if kind in ("yolo", "voc", "coco", "custom"):
        if not cfg.path:
            raise DataError(f"data.source={kind} needs data.path=<folder>")
        root = Path(cfg.path).expanduser().resolve()
        if not root.exists():
            raise DataError(f"{root}: no such file or folder (data.path)")
        images = Path(cfg.images).expanduser().resolve() if cfg.images else None
        if images is not None and not images.is_dir():
            raise DataError(f"{images}: no such folder (data.images)")
        return RawSource(
            name=cfg.name,
            kind=kind,
            root=str(root),
            names=cfg.names,
            images=str(images) if images else None,
            reader=cfg.reader,
        )
    raise DataError(
        f"unknown data.source {kind!r}: use synthetic, yolo, voc, coco, coco128 or custom"
    )


def _coco128_root(path: str | None, offline: bool) -> Path:
    if path:
        root = Path(path).expanduser().resolve()
        if not (root / "images").is_dir():
            raise DataError(f"{root}: not a COCO128 folder (no images/ inside)")
        return root
    if offline:
        raise DataError(
            "coco128: offline, cannot download; point at a local copy with "
            "data.path=/path/to/coco128 (e.g. ../shared/datasets/coco128), or set YEO_OFFLINE=0"
        )
    configure_ultralytics()
    from ultralytics.data.utils import check_det_dataset  # downloads as ultralytics does

    info = check_det_dataset(COCO128_YAML, autodownload=True)
    return Path(info["path"])


def coco_names() -> list[str]:
    """The 80 COCO class names, from the dataset yaml that ships inside ultralytics."""
    configure_ultralytics()
    from ultralytics.utils import ROOT

    data = yaml.safe_load((ROOT / "cfg" / "datasets" / COCO128_YAML).read_text())
    return _names_list(data["names"], "coco128.yaml")


# --------------------------------------------------------------------------- convert


def convert(raw: RawSource) -> SourceDataset:
    """Read annotations of any source kind into a :class:`SourceDataset`."""
    root = Path(raw.root)
    if raw.kind == "voc":
        return _read_voc(raw.name, root, raw.names)
    if raw.kind == "coco":
        return read_coco(raw.name, root, Path(raw.images) if raw.images else None)
    if raw.kind == "custom":
        return read_custom(raw.name, root, raw.reader or "")
    names = coco_names() if raw.kind == "coco128" else raw.names
    return _read_yolo(raw.name, root, names)


def _read_data_yaml(path: Path) -> dict[str, Any]:
    """A data.yaml as a mapping; unreadable YAML is a one-line error naming line and column."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise DataError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: expected a mapping (names, train, val), got {type(data).__name__}"
        )
    return data


def _names_list(names: Any, where: str) -> list[str]:
    if isinstance(names, dict) and names:
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DataError(f"{where}: class ids in 'names' must be integers") from None
        if keys != list(range(len(keys))):
            raise DataError(f"{where}: class ids in 'names' must be 0..n-1, got {keys}")
        if not all(isinstance(v, str | int) for v in names.values()):
            raise DataError(f"{where}: class names in 'names' must be strings")
        return [str(names[k]) for k in keys]
    if isinstance(names, list) and names and all(isinstance(n, str | int) for n in names):
        return [str(n) for n in names]
    raise DataError(f"{where}: 'names' must be a non-empty list or {{id: name}} mapping")


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMG_SUFFIXES and p.is_file())


def _label_for(image: Path) -> Path:
    """ultralytics' convention: the last ``images`` path part becomes ``labels``."""
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _yolo_layout(
    root: Path, names: list[str] | None
) -> tuple[list[str], list[tuple[Path, str | None]]]:
    """Class names and (image folder, split hint) pairs of a YOLO dataset."""
    yaml_file = root if root.suffix in (".yaml", ".yml") else root / "data.yaml"
    if yaml_file.is_file():
        data = _read_data_yaml(yaml_file)
        if "names" not in data:
            if names is None:
                raise DataError(f"{yaml_file}: no class list ('names' missing)")
        else:
            names = _names_list(data["names"], str(yaml_file))
        if not isinstance(data.get("path") or "", str):
            raise DataError(f"{yaml_file}: 'path' must be a folder name, got {data['path']!r}")
        dirs: dict[str, Path] = {}
        for key in ("path", "train", "val", "test"):
            entry = data.get(key)
            if isinstance(entry, str) and ("\0" in entry or not entry.isprintable()):
                raise DataError(f"{yaml_file}: '{key}' is not a usable folder name: {entry!r}")
        base = Path(data.get("path") or yaml_file.parent)
        base = base if base.is_absolute() else (yaml_file.parent / base).resolve()
        for split in ("train", "val", "test"):
            entry = data.get(split)
            if isinstance(entry, str):
                dirs[split] = (base / entry).resolve()
        distinct = len(set(dirs.values())) == len(dirs)
        if dirs and distinct:
            return names, [(d, s) for s, d in dirs.items()]
        if (base / "images").is_dir():
            return names, [(base / "images", None)]
        if dirs:
            return names, [(next(iter(dirs.values())), None)]
        raise DataError(f"{yaml_file}: no train/val entries and no images/ folder beside it")
    if names is None:
        for candidate in (root / "classes.txt", root / "labels" / "classes.txt"):
            if candidate.is_file():
                names = [ln.strip() for ln in candidate.read_text().splitlines() if ln.strip()]
                break
        else:
            raise DataError(
                f"{root}: no data.yaml with a class list (and no classes.txt); "
                "add one or pass data.names=[...]"
            )
    if not (root / "images").is_dir():
        raise DataError(f"{root}: no data.yaml and no images/ folder")
    return names, [(root / "images", None)]


def parse_yolo_label(path: Path) -> tuple[list[LabeledBox], list[str]]:
    """Parse a YOLO label file; returns boxes and one message per bad line.

    Numeric but out-of-range values are kept: validation checks ranges on the metadata table.
    """
    boxes: list[LabeledBox] = []
    problems: list[str] = []
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return [], ["not a text file"]
    for i, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            problems.append(f"line {i}: expected 5 fields (class cx cy w h), got {len(fields)}")
            continue
        try:
            cls_f = float(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            problems.append(f"line {i}: non-numeric value in {line.strip()!r}")
            continue
        if not all(map(math.isfinite, (cls_f, cx, cy, w, h))):
            problems.append(f"line {i}: non-finite value (nan/inf) in {line.strip()!r}")
            continue
        if cls_f != int(cls_f):
            problems.append(f"line {i}: class id {fields[0]!r} is not an integer")
            continue
        boxes.append(LabeledBox(cls=int(cls_f), cx=cx, cy=cy, w=w, h=h))
    return boxes, problems


def _read_yolo(name: str, root: Path, names: list[str] | None) -> SourceDataset:
    names, layout = _yolo_layout(root, names)
    images: list[SourceImage] = []
    faults: list[Fault] = []
    seen_labels: set[Path] = set()
    label_roots: set[Path] = set()
    for folder, split in layout:
        if not folder.is_dir():
            raise DataError(f"{str(folder)!r}: image folder named in data.yaml does not exist")
        for img in _images_under(folder):
            label = _label_for(img) if "images" in img.parts else img.with_suffix(".txt")
            label_roots.add(label.parent)
            entry = SourceImage(path=str(img), split=split)
            if label.is_file():
                seen_labels.add(label)
                entry.label_file = str(label)
                boxes, problems = parse_yolo_label(label)
                entry.boxes = boxes
                faults += [Fault(file=str(label), fault=p, image=str(img)) for p in problems]
            else:
                faults.append(
                    Fault(
                        file=str(img),
                        fault="no label file: kept as a background image",
                        severity="warning",
                    )
                )
            images.append(entry)
    for label_dir in sorted(label_roots):
        for orphan in sorted(set(label_dir.glob("*.txt")) - seen_labels):
            if orphan.name != "classes.txt":
                faults.append(
                    Fault(
                        file=str(orphan),
                        fault="label file without an image: skipped",
                        severity="warning",
                    )
                )
    return SourceDataset(name=name, root=str(root), names=names, images=images, faults=faults)


def _voc_text(node: ET.Element, tag: str) -> str:
    found = node.find(tag)
    if found is None or found.text is None:
        raise ValueError(f"missing <{tag}>")
    return found.text.strip()


def _voc_number(node: ET.Element, tag: str) -> float:
    text = _voc_text(node, tag)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"<{tag}> is not a finite number: {text!r}")
    return value


def _clip_one_pixel(v: float, lo: float, hi: float) -> float:
    """Pull a coordinate at most one pixel outside [lo, hi] back in; leave larger faults."""
    if lo - 1 <= v < lo:
        return lo
    if hi < v <= hi + 1:
        return hi
    return v


def voc_box(size: tuple[int, int], xyxy: tuple[float, float, float, float]) -> tuple[float, ...]:
    """VOC pixel box (1-based, inclusive) to normalized YOLO cx, cy, w, h (ultralytics' VOC rule).

    Coordinates one pixel outside the image (0-based annotators) are clipped; worse ones are
    kept so that validation reports them.
    """
    w, h = size
    x0, x1 = (_clip_one_pixel(v, 1.0, w + 1.0) for v in (xyxy[0], xyxy[2]))
    y0, y1 = (_clip_one_pixel(v, 1.0, h + 1.0) for v in (xyxy[1], xyxy[3]))
    return ((x0 + x1) / 2 - 1) / w, ((y0 + y1) / 2 - 1) / h, (x1 - x0) / w, (y1 - y0) / h


def _read_voc(name: str, root: Path, names: list[str] | None) -> SourceDataset:
    xmls = sorted(root.rglob("*.xml"))
    if not xmls:
        raise DataError(f"{root}: no Pascal VOC .xml annotation files found")
    by_stem: dict[str, Path] = {}
    for img in _images_under(root):
        by_stem.setdefault(img.stem, img)
    parsed: list[
        tuple[Path, Path | None, tuple[int, int] | None, list[tuple[str, tuple]], str]
    ] = []
    faults: list[Fault] = []
    for xml in xmls:
        try:
            doc = DefusedET.parse(xml).getroot()  # no entity expansion, no external fetches
            fname = doc.findtext("filename") or xml.stem
            img = by_stem.get(Path(fname).stem) or by_stem.get(xml.stem)
            size_node = doc.find("size")
            size = None
            if size_node is not None:
                sw, sh = int(_voc_number(size_node, "width")), int(_voc_number(size_node, "height"))
                size = (sw, sh) if sw > 0 and sh > 0 else None
            objs = []
            for obj in doc.iter("object"):
                bb = obj.find("bndbox")
                if bb is None:
                    raise ValueError("<object> without <bndbox>")
                coords = tuple(_voc_number(bb, t) for t in ("xmin", "ymin", "xmax", "ymax"))
                objs.append((_voc_text(obj, "name"), coords))
        except (ET.ParseError, ValueError) as e:  # defusedxml's refusals are ValueErrors
            reason = " ".join(str(e).split()) or type(e).__name__
            faults.append(
                Fault(file=str(xml), fault=f"bad VOC XML: {type(e).__name__}: {reason}", image=None)
            )
            continue
        if img is None:
            faults.append(
                Fault(
                    file=str(xml),
                    fault=f"no image {fname!r} for this annotation: skipped",
                    severity="warning",
                )
            )
            continue
        parsed.append((xml, img, size, objs, fname))
    if names is None:
        names = sorted({n for *_, objs, _ in parsed for n, _ in objs})
        if not names:
            raise DataError(f"{root}: the VOC annotations name no classes; pass data.names=[...]")
    index = {n: i for i, n in enumerate(names)}
    images: list[SourceImage] = []
    for xml, img, size, objs, _ in parsed:
        if size is None:
            with Image.open(img) as im:
                size = im.size
        entry = SourceImage(path=str(img), label_file=str(xml))
        for cls_name, xyxy in objs:
            if cls_name not in index:
                faults.append(
                    Fault(file=str(xml), fault=f"unknown class {cls_name!r}", image=str(img))
                )
                continue
            cx, cy, w, h = voc_box(size, xyxy)
            entry.boxes.append(LabeledBox(cls=index[cls_name], cx=cx, cy=cy, w=w, h=h))
        images.append(entry)
    return SourceDataset(name=name, root=str(root), names=names, images=images, faults=faults)


# --------------------------------------------------------------------------- COCO JSON

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


# --------------------------------------------------------------------------- custom readers


def load_reader(spec: str) -> Callable[[Path], Any]:
    """``package.module:function`` -> the function (the working directory is importable, as
    for ``python -m``); anything wrong is a :class:`ReaderError` naming the reader."""
    module, _, func = spec.partition(":")
    if not module or not func:
        raise ReaderError(f"data.reader {spec!r}: expected 'package.module:function'")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        fn = getattr(importlib.import_module(module), func)
    except Exception as e:  # ImportError, AttributeError, or the module's own import error
        raise ReaderError(f"data.reader {spec}: cannot import: {type(e).__name__}: {e}") from None
    if not callable(fn):
        raise ReaderError(f"data.reader {spec}: {func} is not a function")
    return fn


def read_custom(name: str, root: Path, spec: str) -> SourceDataset:
    """Call a user's reader on ``data.path``: it returns a :class:`SourceDataset` (or the same
    as a dict); validation, ETL, DVC and everything downstream then run unchanged."""
    fn = load_reader(spec)
    try:
        out = fn(root)
    except Exception as e:  # the user's code: any failure is one line naming it
        raise ReaderError(f"data.reader {spec} raised {type(e).__name__}: {e}") from None
    try:
        ds = SourceDataset.model_validate(out if isinstance(out, dict) else out.model_dump())
    except (AttributeError, ValueError) as e:
        first = " ".join(str(e).split())[:200]
        raise ReaderError(
            f"data.reader {spec} returned {type(out).__name__}, not a SourceDataset: {first}"
        ) from None
    if not ds.names:
        raise ReaderError(f"data.reader {spec}: the SourceDataset has no class names")
    return ds.model_copy(update={"name": name})
