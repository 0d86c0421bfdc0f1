"""ETL: decode, resize and re-encode images, split deterministically, write the metadata store.

Everything is written to a staging folder beside the target; :mod:`yeo.data.versioning`
publishes it only after validation passes, so a bad dataset never reaches ``data/processed``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from edge.fileio import sha256
from yeo.data.model import SPLITS, Fault, SourceDataset, SourceImage, StagedDataset
from yeo.errors import DataError
from yeo.io import write_yaml

if TYPE_CHECKING:  # pandas costs ~0.6 s: imported where tables are built, not by the CLI's config
    import pandas as pd

METADATA_FILE = "metadata.parquet"  # one row per box, with its image's columns
IMAGES_FILE = "images.parquet"  # one row per image, background images included
BOX_COLUMNS = ["class_id", "class_name", "cx", "cy", "w", "h"]
IMAGE_COLUMNS = [
    "image",
    "source",
    "split",
    "width",
    "height",
    "channels",
    "source_mode",
    "source_width",
    "source_height",
    "sha256",
    "n_boxes",
]
_CHANNELS = {
    "1": 1,
    "L": 1,
    "P": 1,
    "I": 1,
    "I;16": 1,
    "F": 1,
    "LA": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "CMYK": 4,
}


@dataclass(frozen=True)
class EtlConfig:
    """ETL knobs from ``conf/data``: resize limit, JPEG quality, split fractions and seed."""

    max_side: int | None = 640
    jpeg_quality: int = 95
    split: dict[str, float] = field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15}
    )
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.split) - set(SPLITS)
        if unknown or not self.split:
            raise DataError(f"data.split: keys must be among {SPLITS}, got {sorted(self.split)}")
        if any(v < 0 for v in self.split.values()) or sum(self.split.values()) <= 0:
            raise DataError(f"data.split: fractions must be >= 0 with a positive sum: {self.split}")


def assign_splits(
    hashes: list[str], hints: list[str | None], fractions: dict[str, float], seed: int
) -> list[str]:
    """Seeded split over distinct image hashes, so identical images always share a split.

    Images with a split given by the source keep it (validation then checks for leaks).
    """
    free = sorted({h for h, s in zip(hashes, hints, strict=True) if s is None})
    order = np.random.default_rng(seed).permutation(len(free))
    names = [s for s in SPLITS if fractions.get(s, 0) > 0]
    total = sum(fractions[s] for s in names)
    bounds = np.cumsum([fractions[s] / total for s in names]) * len(free)
    by_hash: dict[str, str] = {}
    for rank, idx in enumerate(order):
        by_hash[free[idx]] = names[int(np.searchsorted(bounds, rank, side="right"))]
    return [s if s is not None else by_hash[h] for h, s in zip(hashes, hints, strict=True)]


def _unique_stems(images: list[SourceImage]) -> list[str]:
    """File stems for the processed set; a stem used twice gets a short hash of its source path."""
    stems = [Path(i.path).stem for i in images]
    counts = Counter(stems)
    return [
        s if counts[s] == 1 else f"{s}_{hashlib.sha1(i.path.encode()).hexdigest()[:8]}"
        for s, i in zip(stems, images, strict=True)
    ]


def _process_image(
    src: Path, dst: Path, max_side: int | None, quality: int
) -> tuple[dict[str, object], list[Fault]]:
    """Decode fully, apply EXIF orientation, convert to RGB, resize, write JPEG."""
    faults: list[Fault] = []
    try:
        with Image.open(src) as im:
            im.load()  # full decode: catches truncated files, not just bad headers
            mode = im.mode
            im = ImageOps.exif_transpose(im)
            src_w, src_h = im.size
            if mode not in ("RGB", "L"):
                faults.append(
                    Fault(
                        file=str(src),
                        fault=f"mode {mode}: converted to RGB",
                        severity="warning",
                        image=str(src),
                    )
                )
            elif mode == "L":
                faults.append(
                    Fault(
                        file=str(src),
                        fault="greyscale: converted to RGB",
                        severity="warning",
                        image=str(src),
                    )
                )
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        reason = "not an image file" if isinstance(e, UnidentifiedImageError) else str(e)
        return {}, [Fault(file=str(src), fault=f"cannot decode image: {reason}", image=str(src))]
    if max_side and max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    dst.parent.mkdir(parents=True, exist_ok=True)
    rgb.save(dst, format="JPEG", quality=quality)
    info = {
        "width": rgb.width,
        "height": rgb.height,
        "channels": _CHANNELS.get(mode, 3),
        "source_mode": mode,
        "source_width": src_w,
        "source_height": src_h,
    }
    return info, faults


def source_base(root: str) -> Path:
    """The folder a dataset's ``source`` column is relative to: its root, or the root's folder
    when the root is a file (a COCO JSON)."""
    base = Path(root).resolve()
    return base.parent if base.is_file() else base


def relative_source(path: str, base: Path) -> str:
    """An image's source path relative to ``base`` (``../`` where it lies beside it, as COCO's
    ``data.images`` may): the same data gives the same tables, and so the same DVC hash, in
    every checkout."""
    return Path(os.path.relpath(Path(path).resolve(), base)).as_posix()


def stage(ds: SourceDataset, staging: Path, target: Path, cfg: EtlConfig) -> StagedDataset:
    """Write the canonical processed dataset of ``ds`` into ``staging``.

    Images whose labels or pixels have errors are left out of the tables and files; their
    faults travel on in the returned :class:`StagedDataset` for validation to report.
    """
    import pandas as pd

    if not ds.images:
        raise DataError(f"{ds.root}: no images found (empty dataset)")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    faults = list(ds.faults)
    bad = {f.image for f in faults if f.severity == "error" and f.image}
    hashes = [sha256(Path(i.path)) for i in tqdm(ds.images, desc="hash", leave=False)]
    splits = assign_splits(hashes, [i.split for i in ds.images], cfg.split, cfg.seed)
    stems = _unique_stems(ds.images)
    base = source_base(ds.root)

    def work(k: int) -> tuple[int, dict[str, object], list[Fault]]:
        img = ds.images[k]
        rel = f"images/{splits[k]}/{stems[k]}.jpg"
        info, errs = _process_image(Path(img.path), staging / rel, cfg.max_side, cfg.jpeg_quality)
        return k, {**info, "image": rel} if info else {}, errs

    todo = [k for k, img in enumerate(ds.images) if img.path not in bad]
    rows: list[dict[str, object]] = []
    box_rows: list[dict[str, object]] = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = tqdm(pool.map(work, todo), total=len(todo), desc=f"etl {ds.name}", unit="img")
        for k, info, errs in results:
            faults += errs
            if not info:
                continue
            img = ds.images[k]
            row = {
                **info,
                "source": relative_source(img.path, base),
                "split": splits[k],
                "sha256": hashes[k],
                "n_boxes": len(img.boxes),
            }
            rows.append(row)
            for b in img.boxes:
                name = ds.names[b.cls] if 0 <= b.cls < len(ds.names) else f"<unknown {b.cls}>"
                box_rows.append(
                    {
                        **row,
                        "class_id": b.cls,
                        "class_name": name,
                        "cx": b.cx,
                        "cy": b.cy,
                        "w": b.w,
                        "h": b.h,
                    }
                )
            label = staging / "labels" / splits[k] / f"{stems[k]}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(
                "".join(f"{b.cls} {b.cx:.6f} {b.cy:.6f} {b.w:.6f} {b.h:.6f}\n" for b in img.boxes)
            )
    images = pd.DataFrame(rows, columns=IMAGE_COLUMNS).sort_values("image", ignore_index=True)
    boxes = pd.DataFrame(box_rows, columns=IMAGE_COLUMNS + BOX_COLUMNS)
    boxes = boxes.sort_values(["image", "class_id", "cx", "cy"], ignore_index=True)
    write_tables(staging, images, boxes)
    write_data_yaml(staging, ds.names, images, ds.class_ids)
    return StagedDataset(
        name=ds.name,
        staging_dir=str(staging),
        target_dir=str(target),
        names=ds.names,
        faults=faults,
        n_images=len(images),
        n_boxes=len(boxes),
        source_root=str(base),
    )


def write_tables(folder: Path, images: pd.DataFrame, boxes: pd.DataFrame) -> None:
    images.to_parquet(folder / IMAGES_FILE, index=False)
    boxes.to_parquet(folder / METADATA_FILE, index=False)


def write_data_yaml(
    folder: Path, names: list[str], images: pd.DataFrame, class_ids: list[int] | None = None
) -> None:
    """A data.yaml ultralytics trains on; no ``path`` key, so it resolves beside the file.
    ``source_class_ids`` maps each class index back to the source's id (COCO categories)."""
    data: dict[str, object] = {}
    for split in SPLITS:
        if (images["split"] == split).any():
            data[split] = f"images/{split}"
    data["nc"] = len(names)
    data["names"] = dict(enumerate(names))
    if class_ids is not None:
        data["source_class_ids"] = dict(enumerate(class_ids))
    write_yaml(folder / "data.yaml", data)


def read_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The image table and the box table of a processed (or staged) dataset."""
    import pandas as pd

    return pd.read_parquet(folder / IMAGES_FILE), pd.read_parquet(folder / METADATA_FILE)
