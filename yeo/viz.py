"""Pictures for notebooks and reports: boxes drawn on images, image grids."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw

Box = tuple[int, tuple[float, ...], str]  # class id, (x1, y1, x2, y2) pixels, label

PALETTE = [
    "#E6194B",
    "#3CB44B",
    "#4363D8",
    "#F58231",
    "#911EB4",
    "#42D4F4",
    "#F032E6",
    "#BFEF45",
    "#FABED4",
    "#469990",
]


def draw_boxes(
    image: Image.Image, boxes: Iterable[tuple[int, tuple[float, ...], str]]
) -> Image.Image:
    """A copy of ``image`` with ``(class_id, (x1, y1, x2, y2), label)`` boxes drawn."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    for cls, (x1, y1, x2, y2), label in boxes:
        color = PALETTE[cls % len(PALETTE)]
        draw.rectangle((x1, y1, x2, y2), outline=color, width=2)
        draw.text((x1 + 2, max(0, y1 - 11)), label, fill=color)
    return out


def yolo_boxes(
    image: Path, label: Path, names: list[str]
) -> list[tuple[int, tuple[float, ...], str]]:
    """Boxes of a YOLO label file in pixel xyxy, for :func:`draw_boxes`."""
    w, h = Image.open(image).size
    boxes = []
    for line in label.read_text().split("\n") if label.is_file() else []:
        if line.strip():
            c, cx, cy, bw, bh = line.split()
            cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
            boxes.append(
                (int(c), (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), names[int(c)])
            )
    return boxes


def grid(images: list[Image.Image], cols: int = 4, cell: int = 256) -> Image.Image:
    """Images scaled into ``cell`` px squares, ``cols`` per row."""
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, max(rows, 1) * cell), "white")
    for i, img in enumerate(images):
        thumb = img.copy()
        thumb.thumbnail((cell, cell))
        sheet.paste(thumb, ((i % cols) * cell, (i // cols) * cell))
    return sheet
