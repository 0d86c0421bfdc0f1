"""The ``data`` config group, typed (ZenML stores it with each run as JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from yeo.data.etl import EtlConfig
from yeo.data.sources import SourceConfig
from yeo.data.synthetic import SyntheticSpec
from yeo.data.validation import Limits
from yeo.env import Workspace
from yeo.errors import ConfigError, DataError
from yeo.group import Group


class DataConfig(Group):
    """The ``data`` group: which source, where, how it is split, checked and versioned."""

    source: str = "synthetic"  # synthetic | yolo | voc | coco128 | coco | custom
    name: str = "synthetic"  # the processed set lands in data/processed/<name>/
    path: str | None = None
    images: str | None = None  # coco: the image folder, when not beside the JSON
    reader: str | None = None  # custom: package.module:function
    names: list[str] | None = None
    on_error: str = "fail"
    max_side: int | None = 640
    jpeg_quality: int = 95
    seed: int = 0
    split: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15}  # as conf/data
    )
    use_source_splits: str | bool = "auto"
    push: bool = True
    limits: dict[str, int] = Field(default_factory=dict)
    synthetic: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, _: Any) -> None:
        try:
            self.source_config()
            self.etl_config()
            self.limits_config()
        except (TypeError, ValueError, DataError) as e:
            raise ConfigError(f"data: {e}") from None
        if self.on_error not in ("fail", "skip"):
            raise ConfigError(f"data.on_error must be 'fail' or 'skip', got {self.on_error!r}")
        if self.source not in ("synthetic", "yolo", "voc", "coco128", "coco", "custom"):
            raise ConfigError(
                f"data.source {self.source!r}: use synthetic, yolo, voc, coco, coco128 or custom"
            )
        if str(self.use_source_splits).lower() not in ("auto", "true", "false"):
            raise ConfigError("data.use_source_splits must be auto, true or false")

    @property
    def keep_source_splits(self) -> bool:
        """False only when told to re-split (``use_source_splits=false``)."""
        return str(self.use_source_splits).lower() != "false"

    def source_config(self) -> SourceConfig:
        return SourceConfig(
            source=self.source,
            name=self.name,
            path=self.path,
            images=self.images,
            reader=self.reader,
            names=list(self.names) if self.names else None,
            synthetic=SyntheticSpec(**self.synthetic) if self.source == "synthetic" else None,
        )

    def etl_config(self) -> EtlConfig:
        return EtlConfig(
            max_side=self.max_side,
            jpeg_quality=self.jpeg_quality,
            split=dict(self.split),
            seed=self.seed,
        )

    def limits_config(self) -> Limits:
        return Limits(**self.limits)


def check(cfg: DataConfig) -> None:
    """What a valid config still needs from this machine: a custom reader, importable."""
    if cfg.source == "custom":
        from yeo.data.readers.custom import load_reader

        load_reader(cfg.reader or "")


def staging_dir(ws: Workspace, name: str) -> Path:
    """Staging lives beside data/processed (same filesystem: publishing is one rename)."""
    return ws.data / ".staging" / name


def processed_dir(ws: Workspace, name: str) -> Path:
    return ws.data / "processed" / name


def raw_dir(ws: Workspace, name: str) -> Path:
    return ws.data / "raw" / name


def report_dir(ws: Workspace, name: str) -> Path:
    return ws.outputs / "reports" / "data" / name
