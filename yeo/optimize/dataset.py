"""Image lists of a processed dataset, read from its metadata store (images.parquet)."""

from __future__ import annotations

from pathlib import Path

from yeo.data.etl import IMAGES_FILE
from yeo.errors import DataError


def split_images(processed: Path, split: str) -> list[Path]:
    import pandas as pd

    table = processed / IMAGES_FILE
    if not table.is_file():
        raise DataError(f"{table}: metadata store missing; run `python run.py --pipeline data`")
    images = pd.read_parquet(table, columns=["image", "split"])
    return [processed / p for p in images.loc[images["split"] == split, "image"]]


def busiest_images(processed: Path, split: str, n: int) -> list[Path]:
    """The ``n`` images of ``split`` with the most boxes (golden cases that exercise NMS)."""
    import pandas as pd

    images = pd.read_parquet(processed / IMAGES_FILE, columns=["image", "split", "n_boxes"])
    rows = images[images["split"] == split].sort_values(
        ["n_boxes", "image"], ascending=[False, True]
    )
    return [processed / p for p in rows["image"].head(n)]
