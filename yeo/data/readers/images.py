"""The image files a reader looks for."""

from __future__ import annotations

from pathlib import Path

IMG_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMG_SUFFIXES and p.is_file())
