"""Pascal VOC: images with one XML annotation file each."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import defusedxml.ElementTree as DefusedET
from PIL import Image

from yeo.data.model import Fault, LabeledBox, SourceDataset, SourceImage
from yeo.data.readers.images import images_under
from yeo.errors import DataError


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


def read_voc(name: str, root: Path, names: list[str] | None) -> SourceDataset:
    xmls = sorted(root.rglob("*.xml"))
    if not xmls:
        raise DataError(f"{root}: no Pascal VOC .xml annotation files found")
    by_stem: dict[str, Path] = {}
    for img in images_under(root):
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
