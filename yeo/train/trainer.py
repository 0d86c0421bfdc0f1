"""Train YOLOv8n with ultralytics, offline, logging every epoch to MLflow."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yeo.env import configure_ultralytics, is_offline
from yeo.errors import ConfigError, DataError
from yeo.train.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)
Callback = Callable[[Any], None]


@dataclass
class TrainOutcome:
    """What a training run left behind."""

    save_dir: Path
    best: Path
    last: Path
    epochs_run: int
    seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)


def metric_name(key: str) -> str:
    """ultralytics' keys (``metrics/mAP50-95(B)``) as MLflow-legal names (``metrics/mAP50-95``)."""
    return key.replace("(B)", "").replace("(", "_").replace(")", "")


def epoch_metrics(trainer: Any) -> dict[str, float]:
    """Train losses, validation metrics and learning rates of the epoch that just ended."""
    values = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **(trainer.metrics or {})}
    values |= trainer.lr or {}
    return {metric_name(k): float(v) for k, v in values.items()}


def per_epoch(fn: Callback, on_final: Callback | None = None) -> Callback:
    """Wrap an ``on_fit_epoch_end`` callback so it sees training epochs only.

    ultralytics fires the same event once more after training, from ``final_eval`` (the best
    checkpoint's metrics, at step epochs+1). That call always follows an in-loop call with
    ``trainer.stop`` set; it goes to ``on_final`` instead.
    """
    state = {"stopped": False}

    def callback(trainer: Any) -> None:
        if state["stopped"]:
            if on_final:
                on_final(trainer)
            return
        state["stopped"] = bool(trainer.stop)
        fn(trainer)

    return callback


class EpochRecorder:
    """Collects per-epoch metrics and times; attaches itself and extra callbacks to a trainer."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.epoch_seconds: list[float] = []

    def __call__(self, trainer: Any) -> None:
        self.epoch_seconds.append(float(trainer.epoch_time or 0.0))
        self.history.append({"epoch": trainer.epoch + 1, **epoch_metrics(trainer)})

    def attach(self, add_callback: Callable[[str, Callback], None], extra: list[Callback]) -> None:
        """Register this recorder and ``extra`` on ``on_fit_epoch_end`` (training epochs only)."""
        for cb in [self, *extra]:
            add_callback("on_fit_epoch_end", per_epoch(cb))

    def outcome(self, save_dir: Path, seconds: float) -> TrainOutcome:
        weights = save_dir / "weights"
        return TrainOutcome(
            save_dir=save_dir,
            best=weights / "best.pt",
            last=weights / "last.pt",
            epochs_run=len(self.history),
            seconds=seconds,
            epoch_seconds=self.epoch_seconds,
            history=self.history,
        )


def monitor_data(data_yaml: Path, limit: int | None, dest: Path) -> Path:
    """The data.yaml a training run validates on after each epoch (best.pt, early stopping):
    ``data_yaml`` itself, or, when ``limit`` is set and its val split is larger, a copy in
    ``dest`` whose val is ``limit`` images spread evenly over val (sorted by name). Per-epoch
    validation then costs the same however large val grows; the evaluator still chooses on
    all of it."""
    import numpy as np
    import yaml
    from ultralytics.data.utils import check_det_dataset

    from yeo.evaluation import entry_images
    from yeo.io import write_yaml

    data_yaml = Path(data_yaml)
    if limit is None:
        return data_yaml
    info = check_det_dataset(str(data_yaml))  # path and splits as ultralytics resolves them
    val = entry_images(info.get("val"))
    if len(val) <= limit:
        return data_yaml
    picked = [val[i] for i in np.linspace(0, len(val) - 1, limit).round().astype(int)]
    dest.mkdir(parents=True, exist_ok=True)
    listing = dest / "val_monitor.txt"
    listing.write_text("".join(f"{f.resolve()}\n" for f in picked))
    data = yaml.safe_load(data_yaml.read_text()) or {}
    train = info["train"] if isinstance(info["train"], list) else [info["train"]]
    monitor = {k: v for k, v in data.items() if k not in ("path", "train", "val", "test")}
    monitor |= {"path": str(info["path"]), "train": [str(t) for t in train], "val": str(listing)}
    write_yaml(dest / "data.yaml", monitor)
    log.info("per-epoch validation on %d of the %d val images (%s)", limit, len(val), listing)
    return dest / "data.yaml"


def build_model(model: ModelConfig) -> Any:
    """A YOLO model from the architecture yaml (scratch) or from weights (pretrained)."""
    configure_ultralytics()
    from ultralytics import YOLO

    if model.init == "scratch":
        return YOLO(model.arch, task="detect")
    weights = Path(model.weights).expanduser()
    if weights.is_file():
        return YOLO(str(weights), task="detect")
    if is_offline():
        raise ConfigError(
            f"model.weights={model.weights}: no such local file and offline, so it cannot be "
            "downloaded; point model.weights=/path/to/yolov8n.pt or set YEO_OFFLINE=0"
        )
    return YOLO(model.weights, task="detect")  # ultralytics downloads hub weights by name


def train(
    data_yaml: Path,
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    save_dir: Path,
    on_epoch_end: list[Callback] | None = None,
    model: Any | None = None,
) -> TrainOutcome:
    """Train on ``data_yaml``; ``on_epoch_end`` callbacks get the ultralytics trainer."""
    if not Path(data_yaml).is_file():
        raise DataError(
            f"{data_yaml}: processed dataset missing; run `python run.py --pipeline data` "
            "or `dvc pull`"
        )
    model = model or build_model(model_cfg)
    recorder = EpochRecorder()
    recorder.attach(model.add_callback, on_epoch_end or [])
    monitored = monitor_data(data_yaml, cfg.monitor_images, save_dir / "monitor")
    start = time.perf_counter()
    model.train(
        data=str(monitored),
        project=str(save_dir.parent),
        name=save_dir.name,
        exist_ok=True,
        plots=False,  # plots fetch fonts and cost time; our reports draw their own
        val=True,
        verbose=False,
        **cfg.ultralytics_args(),
    )
    return recorder.outcome(save_dir, time.perf_counter() - start)
