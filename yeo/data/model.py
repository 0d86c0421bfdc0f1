"""Typed records passed between the data steps (pydantic, so ZenML stores them as artifacts)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


class Fault(BaseModel):
    """One problem with one file. ``image`` ties it to the image it disqualifies, if any."""

    file: str
    fault: str
    severity: Severity = "error"
    image: str | None = None

    def line(self) -> str:
        return f"{self.severity.upper():7s} {self.file}: {self.fault}"


class LabeledBox(BaseModel):
    cls: int
    cx: float
    cy: float
    w: float
    h: float


class SourceImage(BaseModel):
    """An image of the source dataset with its annotations (normalized YOLO boxes)."""

    path: str
    label_file: str | None = None
    boxes: list[LabeledBox] = Field(default_factory=list)
    split: str | None = None


class RawSource(BaseModel):
    """Where a dataset's raw files are, and how to read them."""

    name: str
    kind: Literal["synthetic", "yolo", "voc", "coco128", "coco", "custom"]
    root: str
    names: list[str] | None = None
    images: str | None = None  # COCO JSON: the image folder, when not beside the JSON
    reader: str | None = None  # custom: "package.module:function"
    generated: bool = False  # raw files written by us inside the workspace (DVC-tracked)
    fingerprint: str = ""  # the raw files' content (sources.fingerprint): keys cached steps


class SourceDataset(BaseModel):
    """A source converted to the canonical form: class names, images, boxes, file faults."""

    name: str
    root: str
    names: list[str]
    images: list[SourceImage]
    faults: list[Fault] = Field(default_factory=list)
    class_ids: list[int] | None = None  # the source's own id of each class (COCO categories)


class StagedDataset(BaseModel):
    """The processed dataset written to a staging folder, not yet published."""

    name: str
    staging_dir: str
    target_dir: str
    names: list[str]
    faults: list[Fault] = Field(default_factory=list)
    n_images: int = 0
    n_boxes: int = 0
    # the folder the tables' ``source`` column is relative to (this machine's; for messages)
    source_root: str = ""

    @property
    def staging(self) -> Path:
        return Path(self.staging_dir)


class ValidationReport(BaseModel):
    """What validation found; ``success`` is False if any error remains."""

    name: str
    success: bool
    on_error: str
    faults: list[Fault]
    dropped_images: list[str] = Field(default_factory=list)
    expectations: list[dict] = Field(default_factory=list)
    report_dir: str
    data_docs: str | None = None
    n_images: int = 0
    n_boxes: int = 0
    class_counts: dict[str, int] = Field(default_factory=dict)
    split_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def errors(self) -> list[Fault]:
        return [f for f in self.faults if f.severity == "error"]

    @property
    def warnings(self) -> list[Fault]:
        return [f for f in self.faults if f.severity == "warning"]


class DataVersion(BaseModel):
    """A published, DVC-tracked processed dataset: what later steps train and evaluate on."""

    name: str
    location: str  # where it was published, relative to the workspace: data/processed/<name>
    dvc_hash: str
    raw_dvc_hash: str | None = None
    tracked_by: str  # the .dvc file or the dvc.yaml stage that records it
    n_images: int
    n_boxes: int
    names: list[str]
