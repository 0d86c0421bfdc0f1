"""ZenML steps: thin typed wrappers over the plain functions in ``yeo``."""

from steps.convert_annotations import convert_annotations
from steps.etl_dataset import etl_dataset
from steps.ingest_data import ingest_data
from steps.validate_dataset import validate_dataset
from steps.version_dataset import version_dataset

__all__ = [
    "convert_annotations",
    "etl_dataset",
    "ingest_data",
    "validate_dataset",
    "version_dataset",
]
