"""ETL: decode, resize, re-encode, split and write the metadata store into a staging folder."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from yeo.data import etl, settings
from yeo.data.model import SourceDataset, StagedDataset
from yeo.data.settings import DataConfig
from yeo.env import workspace
from yeo.tracking import step_metadata


@step(enable_cache=False)
def etl_dataset(
    source: SourceDataset, data: DataConfig
) -> Annotated[StagedDataset, "staged_dataset"]:
    """Stage the processed dataset; nothing reaches ``data/processed`` before validation."""
    if not data.keep_source_splits:
        source = source.model_copy(
            update={"images": [i.model_copy(update={"split": None}) for i in source.images]}
        )
    ws = workspace()
    staged = etl.stage(
        source,
        settings.staging_dir(ws, source.name),
        settings.processed_dir(ws, source.name),
        data.etl_config(),
    )
    step_metadata({"staged_images": staged.n_images, "staged_boxes": staged.n_boxes})
    return staged
