"""YOLO datasets: a data.yaml (ultralytics' own), or images/ + labels/ folders."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from yeo.data.model import Fault, LabeledBox, SourceDataset, SourceImage
from yeo.data.readers.images import images_under
from yeo.errors import DataError


def read_data_yaml(path: Path) -> dict[str, Any]:
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


def names_list(names: Any, where: str) -> list[str]:
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
        data = read_data_yaml(yaml_file)
        if "names" not in data:
            if names is None:
                raise DataError(f"{yaml_file}: no class list ('names' missing)")
        else:
            names = names_list(data["names"], str(yaml_file))
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


def read_yolo(name: str, root: Path, names: list[str] | None) -> SourceDataset:
    names, layout = _yolo_layout(root, names)
    images: list[SourceImage] = []
    faults: list[Fault] = []
    seen_labels: set[Path] = set()
    label_roots: set[Path] = set()
    for folder, split in layout:
        if not folder.is_dir():
            raise DataError(f"{str(folder)!r}: image folder named in data.yaml does not exist")
        for img in images_under(folder):
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
