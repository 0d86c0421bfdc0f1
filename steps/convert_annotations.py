"""Convert: read the source's annotations (YOLO txt or VOC XML) into one canonical form."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from yeo.data import sources
from yeo.data.model import RawSource, SourceDataset
from yeo.tracking import step_metadata


@step(enable_cache=False)
def convert_annotations(raw: RawSource) -> Annotated[SourceDataset, "source_dataset"]:
    """Parse every label file; bad lines become faults for validation to report."""
    ds = sources.convert(raw)
    step_metadata(
        {
            "images": len(ds.images),
            "boxes": sum(len(i.boxes) for i in ds.images),
            "classes": len(ds.names),
            "label_faults": len(ds.faults),
        }
    )
    return ds
