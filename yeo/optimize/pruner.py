"""The pruner itself: torch-pruning's MetaPruner over a YOLOv8 DetectionModel, and the
footprint (parameters, MACs) it leaves. A leaf of :mod:`yeo.optimize.prune` (the prune +
fine-tune loop) and :mod:`yeo.optimize.sensitivity` (the per-block scan), which both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from yeo.devices import example_input
from yeo.optimize.settings import PruneConfig


@dataclass(frozen=True)
class Footprint:
    params: int
    macs: int  # multiply-accumulates at the given image size


def footprint(model: nn.Module, imgsz: int) -> Footprint:
    import torch_pruning as tp

    example = example_input(model, imgsz)
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, example)
    model.train(was_training)
    return Footprint(params=int(params), macs=int(macs))


def detect_tail(model: nn.Module) -> list[nn.Module]:
    """Layers that must keep their channels: Detect's final box/class convs and the DFL."""
    from ultralytics.nn.modules import Detect

    keep: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, Detect):
            for branch in (*m.cv2, *m.cv3):
                keep.append(branch[-1])  # the last conv of each branch: fixed output width
            keep.append(m.dfl)
    return keep


def _importance(name: str) -> Any:
    import torch_pruning as tp

    return {
        "magnitude": lambda: tp.importance.MagnitudeImportance(p=2),
        "bn_scale": lambda: tp.importance.BNScaleImportance(),
    }[name]()


def make_pruner(
    model: nn.Module, cfg: PruneConfig, imgsz: int, ratios: dict[str, float] | None = None
) -> Any:
    """A torch-pruning MetaPruner reaching ``cfg.ratio`` in ``cfg.steps`` steps; ``ratios``
    (block name -> fraction of its channels, from :func:`yeo.optimize.sensitivity.allocate`)
    in place of the uniform ratio: blocks it does not name keep their channels."""
    import torch_pruning as tp

    for p in model.parameters():
        p.requires_grad_(True)
    example = example_input(model, imgsz, random=True)
    named = dict(model.named_modules())
    return tp.pruner.MetaPruner(
        model,
        example,
        importance=_importance(cfg.importance),
        pruning_ratio=cfg.ratio if ratios is None else 0.0,
        pruning_ratio_dict={named[k]: r for k, r in (ratios or {}).items() if r > 0} or None,
        iterative_steps=cfg.steps,
        ignored_layers=detect_tail(model),
        round_to=cfg.round_to,
        global_pruning=False,
    )


def prune_step(pruner: Any, model: nn.Module) -> None:
    """One pruning step (of ``cfg.steps``), in eval mode so BN statistics stay untouched."""
    model.eval()
    pruner.step()
