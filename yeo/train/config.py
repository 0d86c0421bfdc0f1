"""Typed views of the ``train`` and ``model`` config groups."""

from __future__ import annotations

from typing import Any

from yeo.errors import ConfigError
from yeo.group import Group

# ultralytics train() arguments that come straight from the train profile
ULTRALYTICS_ARGS = (
    "imgsz",
    "epochs",
    "batch",
    "optimizer",
    "lr0",
    "lrf",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "cos_lr",
    "patience",
    "close_mosaic",
    "mosaic",
    "hsv_h",
    "hsv_s",
    "hsv_v",
    "scale",
    "translate",
    "fliplr",
    "flipud",
    "degrees",
    "seed",
    "deterministic",
    "workers",
    "amp",
)


class TrainConfig(Group):
    """The ``train`` group (a profile: ``train=quick`` / ``full`` / ``tuned``)."""

    imgsz: int = 256
    epochs: int = 30
    batch: int = 16
    optimizer: str = "AdamW"
    lr0: float = 0.002
    lrf: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0005
    warmup_epochs: float = 2.0
    cos_lr: bool = True
    patience: int = 100
    close_mosaic: int = 5
    mosaic: float = 1.0
    hsv_h: float = 0.0
    hsv_s: float = 0.0
    hsv_v: float = 0.3
    scale: float = 0.3
    translate: float = 0.1
    fliplr: float = 0.5
    flipud: float = 0.5
    degrees: float = 0.0
    seed: int = 0
    deterministic: bool = True
    device: str | int = "auto"  # auto | cpu | 0 | 0,1 ...
    workers: int = 0
    amp: bool = False
    monitor_images: int | None = None  # per-epoch validation on this many val images (None: all)

    def model_post_init(self, _: Any) -> None:
        if self.imgsz < 32 or self.imgsz % 32:
            raise ConfigError(f"train.imgsz must be a multiple of 32 (>= 32), got {self.imgsz}")
        if self.epochs < 1 or self.batch < 1:
            raise ConfigError("train.epochs and train.batch must be >= 1")
        if self.monitor_images is not None and self.monitor_images < 1:
            raise ConfigError(
                f"train.monitor_images must be >= 1 or null, got {self.monitor_images}"
            )
        if not 0 < self.lr0 < 1:
            raise ConfigError(f"train.lr0 must be in (0, 1), got {self.lr0}")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> TrainConfig:
        return cls.parse("train", cfg)

    def ultralytics_args(self) -> dict[str, Any]:
        values = self.model_dump()
        return {k: values[k] for k in ULTRALYTICS_ARGS} | {"device": resolve_device(self.device)}

    def with_overrides(self, **kw: Any) -> TrainConfig:
        return TrainConfig(**(self.model_dump() | kw))


class ModelConfig(Group):
    """The ``model`` group: from scratch or pretrained weights."""

    init: str = "scratch"
    arch: str = "yolov8n.yaml"
    weights: str = "yolov8n.pt"

    def model_post_init(self, _: Any) -> None:
        if self.init not in ("scratch", "pretrained"):
            raise ConfigError(f"model.init must be scratch or pretrained, got {self.init!r}")


def resolve_device(device: str) -> str:
    """``auto`` -> first CUDA device if there is one, else ``cpu``; others pass through."""
    device = str(device)
    if device != "auto":
        return device
    import torch

    return "0" if torch.cuda.is_available() else "cpu"
