"""Fine-tune a given nn.Module with ultralytics' trainer, keeping its (pruned) architecture.

``YOLO(...).train()`` rebuilds the model from its yaml, silently undoing pruning. Driving
``DetectionTrainer`` directly with ``trainer.model`` already set skips that rebuild
(``setup_model`` returns early for a module), and EMA, checkpoints and best.pt then all hold
the pruned architecture.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yeo.env import configure_ultralytics
from yeo.train.config import TrainConfig
from yeo.train.trainer import Callback, EpochRecorder, TrainOutcome


def finetune(
    model: nn.Module,
    data_yaml: Path,
    cfg: TrainConfig,
    save_dir: Path,
    on_epoch_end: list[Callback] | None = None,
    teacher: Path | None = None,
    distill: float = 0.0,
) -> TrainOutcome:
    """Train ``model`` (in place) on ``data_yaml``; best.pt/last.pt keep its architecture.

    ``teacher`` (a checkpoint) and ``distill`` > 0: knowledge distillation with ultralytics'
    own ``DistillationModel`` (the trainer's ``distill_model``/``dis``): the student's neck
    features, projected by a small 1x1-conv MLP, are pulled towards the teacher's by an L2
    loss weighted by the teacher's class scores (objects count, background little), added to
    the detection loss as ``dis_loss`` with weight ``distill``. Costs one teacher forward
    pass per batch."""
    import time

    configure_ultralytics()
    from ultralytics.models.yolo.detect import DetectionTrainer

    from yeo.train.trainer import monitor_data

    args = cfg.ultralytics_args() | {
        "data": str(monitor_data(data_yaml, cfg.monitor_images, save_dir / "monitor")),
        "project": str(save_dir.parent),
        "name": save_dir.name,
        "exist_ok": True,
        "plots": False,
        "val": True,
        "verbose": False,
        "model": "pruned.pt",  # a name only: the module itself is set below
    }
    if teacher is not None and distill > 0:
        args |= {"distill_model": str(teacher), "dis": distill}
    trainer = DetectionTrainer(overrides=args)
    trainer.model = model
    recorder = EpochRecorder()
    recorder.attach(trainer.add_callback, on_epoch_end or [])
    start = time.perf_counter()
    try:
        trainer.train()
    finally:
        if "distill_model" in args:  # the student keeps the wrapper's feature hooks: drop them
            from ultralytics.nn.distill_model import DistillationModel

            for m in model.modules():
                DistillationModel._clear_feature_hooks(m)
    return recorder.outcome(save_dir, time.perf_counter() - start)


def load_module(weights: Path) -> nn.Module:
    """The float32 nn.Module inside an ultralytics checkpoint (EMA if present)."""
    configure_ultralytics()
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(str(weights), device="cpu")
    return model.float()


def save_checkpoint(model: nn.Module, path: Path, train_args: dict[str, Any]) -> Path:
    """Save ``model`` as an ultralytics checkpoint that ``YOLO(path)`` loads as is."""
    import ultralytics

    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "date": datetime.datetime.now().isoformat(),
        "version": ultralytics.__version__,
        "model": copy.deepcopy(model).half(),
        "train_args": train_args,
        "epoch": -1,
    }
    torch.save(ckpt, path)
    return path
