"""Ingest and convert: find a source's raw files and read its annotations into one form.

Four kinds of source: ``synthetic`` (generated here), ``yolo`` (a data.yaml, or images/ +
labels/), ``voc`` (images + Pascal VOC XML) and ``coco128`` (fetched as ultralytics does when
online, else a local copy). Label problems become :class:`Fault` records, not exceptions, so
validation can report every bad file at once; only a source that cannot be read at all raises.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DefusedET
import yaml
from PIL import Image

from yeo.data import synthetic
from yeo.data.model import Fault, LabeledBox, RawSource, SourceDataset, SourceImage
from yeo.env import configure_ultralytics
from yeo.errors import DataError

IMG_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
COCO128_YAML = "coco128.yaml"


@dataclass(frozen=True)
class SourceConfig:
    """The ``data`` config group, as plain values."""

    source: str
    name: str
    path: str | None = None
    names: list[str] | None = None
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
    if kind in ("yolo", "voc"):
        if not cfg.path:
            raise DataError(f"data.source={kind} needs data.path=<folder>")
        root = Path(cfg.path).expanduser().resolve()
        if not root.exists():
            raise DataError(f"{root}: no such file or folder (data.path)")
        return RawSource(name=cfg.name, kind=kind, root=str(root), names=cfg.names)
    raise DataError(f"unknown data.source {kind!r}: use synthetic, yolo, voc or coco128")


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
