"""Structured channel pruning of an ultralytics YOLOv8 DetectionModel with torch-pruning.

C2f blocks are first made split-free (see :mod:`yeo.optimize.blocks`); the Detect head's
final convs (box and class outputs) and the DFL stay out, so outputs keep their layout.
Pruning is iterative: ``steps`` rounds of pruning, each followed by fine-tuning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from yeo.optimize.pruner import Footprint, footprint, make_pruner, prune_step
from yeo.optimize.sensitivity import per_block_ratios, scan
from yeo.optimize.settings import PruneConfig
from yeo.train.config import TrainConfig
from yeo.train.trainer import Callback

log = logging.getLogger(__name__)


@dataclass
class PruneOutcome:
    weights: Path  # the final pruned (and fine-tuned) checkpoint
    before: Footprint
    after: Footprint  # of ``weights``
    steps: list[dict[str, Any]]
    seconds: float
    kept: int = 0  # the step whose model ``weights`` is (1-based)
    kept_why: str | None = None  # why an earlier step than the final one was kept
    ratios: dict[str, float] | None = None  # per-block ratios (schedule: sensitivity)
    scan: list[dict[str, Any]] | None = None  # the sensitivity scan's probes


def finetune_schedule(cfg: PruneConfig, train_cfg: TrainConfig) -> TrainConfig:
    """The recipe of each fine-tune after a prune step: ``train_cfg`` with ``cfg``'s epochs and
    learning rate, a cosine schedule and no warm-up."""
    return train_cfg.with_overrides(
        epochs=max(cfg.finetune_epochs, 1),
        lr0=cfg.lr0,
        warmup_epochs=0.0,
        cos_lr=True,
        close_mosaic=min(train_cfg.close_mosaic, max(cfg.finetune_epochs // 2, 0)),
    )


def finetune_in_place(
    model: nn.Module,
    data_yaml: Path,
    ft_cfg: TrainConfig,
    save_dir: Path,
    on_epoch_end: list[Callback] | None = None,
    teacher: Path | None = None,
    distill: float = 0.0,
    judge: Callable[[Path], float] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """One fine-tune of ``model``, its chosen weights loaded back into it (so the next round
    starts from them); the chosen checkpoint and the round's record: seconds, best val
    mAP50-95 of the epochs' validation and that of each epoch.

    Where the epochs validate on a subset of val (``ft_cfg.monitor_images``) and ``judge`` is
    given (a checkpoint -> its mAP50-95 on all of val, the project's evaluator), the subset
    only proposes: best.pt and last.pt, when they differ, are both scored by ``judge`` and the
    higher is chosen (``checkpoint`` in the record, with both scores; the chosen one's is
    ``val_mAP50-95``). The 32-image monitor's proposals were 0.0024 (the converged base's
    pruned copy, 600 val images) and 0.014 (the default run's second prune step, 400) below
    the last epoch on all of val."""
    from yeo.optimize.finetune import finetune, load_module

    outcome = finetune(
        model, Path(data_yaml), ft_cfg, save_dir, on_epoch_end, teacher=teacher, distill=distill
    )
    curve = [h.get("metrics/mAP50-95") for h in outcome.history]
    best = max((m for m in curve if m is not None), default=0.0)
    record: dict[str, Any] = {"finetune_seconds": outcome.seconds, "mAP50-95": best, "curve": curve}
    chosen = outcome.best
    if judge is not None and ft_cfg.monitor_images is not None:
        chosen, checked = pick_checkpoint(outcome.best, outcome.last, judge)
        record |= checked
    model.load_state_dict(load_module(chosen).state_dict())
    return chosen, record


def pick_checkpoint(
    best: Path, last: Path, judge: Callable[[Path], float]
) -> tuple[Path, dict[str, Any]]:
    """``best`` or ``last``, whichever ``judge`` scores higher (``best`` on a tie, and without
    evaluating either where the two hold the same weights or ``last`` is missing), and the
    record of the choice."""
    if not last.is_file() or same_weights(best, last):
        return best, {"checkpoint": "best"}
    scores = {"best": judge(best), "last": judge(last)}
    pick = "last" if scores["last"] > scores["best"] else "best"
    record = {"checkpoint": pick, "val_mAP50-95": scores[pick], "checkpoint_val": scores}
    log.info("fine-tune checkpoint on all of val: %s", record)
    return (last if pick == "last" else best), record


def same_weights(a: Path, b: Path) -> bool:
    """Whether two checkpoints hold the same weights."""
    import torch

    from yeo.optimize.finetune import load_module

    sa, sb = load_module(a).state_dict(), load_module(b).state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def finetune_control(
    base_weights: Path,
    data_yaml: Path,
    cfg: PruneConfig,
    train_cfg: TrainConfig,
    out_dir: Path,
    on_epoch_end: list[Callback] | None = None,
    judge: Callable[[Path], float] | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """The fair control, ``base_ft``: ``base_weights`` fine-tuned, unpruned and with its own
    activations, on the pruned copy's schedule (``cfg.steps`` fine-tunes of
    :func:`finetune_schedule`, each resuming from the best of the one before). What it gains
    over the base is extra training, not pruning. ``judge``: each fine-tune's checkpoint
    chosen as the pruned copy's are (:func:`finetune_in_place`). Returns its chosen checkpoint
    and the record of each fine-tune."""
    from yeo.optimize.finetune import load_module

    model = load_module(Path(base_weights))
    ft_cfg = finetune_schedule(cfg, train_cfg)
    weights, steps = Path(base_weights), []
    for i in range(cfg.steps):
        save = Path(out_dir) / f"step{i + 1}"
        weights, record = finetune_in_place(
            model, Path(data_yaml), ft_cfg, save, on_epoch_end, judge=judge
        )
        steps.append({"step": i + 1} | record)
        log.info("base_ft fine-tune %d/%d: %s", i + 1, cfg.steps, steps[-1])
    return Path(weights), steps


def prune_and_finetune(
    base_weights: Path,
    data_yaml: Path,
    cfg: PruneConfig,
    train_cfg: TrainConfig,
    out_dir: Path,
    on_epoch_end: list[Callback] | None = None,
    judge: Callable[[Path], float] | None = None,
    budget: float | None = None,
    base_map: float | None = None,
) -> PruneOutcome:
    """Prune ``base_weights`` to ``cfg.ratio`` in ``cfg.steps`` steps, fine-tuning after each.

    ``judge`` (a checkpoint -> val mAP50-95, the project's evaluator) and ``budget``: each
    fine-tuned step is scored against the base, and the last step within the budget is the
    result (the final step when none is). ``cfg.schedule`` sensitivity: per-block ratios from a
    scan of the base (with its own activations) by ``judge``
    (:mod:`yeo.optimize.sensitivity`). Every step runs: a later fine-tune can recover
    what an earlier step lost (an under-trained base gains from the extra epochs).
    ``base_map``: the base's val score when already known (else ``judge`` scores it).

    ``cfg.activation`` other than silu swaps the activations first
    (:func:`yeo.optimize.activation.swap_activation`); ``cfg.distill`` > 0 fine-tunes with
    distillation from ``base_weights`` (the unpruned SiLU model) as the teacher.

    ``train_cfg`` gives the fine-tuning recipe; its epochs and lr are replaced
    by ``cfg.finetune_epochs`` and ``cfg.lr0``. After each fine-tune the best weights are
    copied back into the module the pruner tracks, so the next step prunes trained weights.
    """
    import time

    from yeo.optimize.activation import swap_activation
    from yeo.optimize.blocks import replace_c2f
    from yeo.optimize.finetune import load_module, save_checkpoint

    start = time.perf_counter()
    out_dir = Path(out_dir)
    imgsz = train_cfg.imgsz
    model = load_module(Path(base_weights))
    n = replace_c2f(model)
    log.info("replaced %d C2f blocks with split-free twins", n)
    if base_map is None and judge is not None and (budget is not None or cfg.schedule != "uniform"):
        base_map = judge(Path(base_weights))
    ratios, probes = None, None
    if cfg.schedule == "sensitivity":
        if judge is None or base_map is None:
            raise ValueError("optimize.prune.schedule=sensitivity needs a judge (val mAP)")
        probes = scan(model, cfg, imgsz, judge, base_map, lambda m, p: save_checkpoint(m, p, {}))
        ratios = per_block_ratios(model, cfg, imgsz, probes)
    swapped = swap_activation(model, cfg.activation)
    if swapped:
        log.info("activation: %d SiLU replaced by %s", swapped, cfg.activation)
    teacher = Path(base_weights) if cfg.distill > 0 else None
    before = footprint(model, imgsz)
    pruner = make_pruner(model, cfg, imgsz, ratios)
    ft_cfg = finetune_schedule(cfg, train_cfg)
    steps: list[dict[str, Any]] = []
    weights = None
    kept: tuple[int, Path | None, Footprint] | None = None  # the last step within the budget
    for i in range(cfg.steps):
        prune_step(pruner, model)
        fp = footprint(model, imgsz)
        record: dict[str, Any] = {"step": i + 1, "params": fp.params, "macs": fp.macs}
        if cfg.finetune_epochs > 0:
            save = out_dir / f"step{i + 1}"
            weights, done = finetune_in_place(
                model, Path(data_yaml), ft_cfg, save, on_epoch_end, teacher, cfg.distill, judge
            )
            record |= done
        final = (i + 1, weights, fp)
        if budget is not None and base_map is not None and judge is not None and weights:
            m = record.get("val_mAP50-95")
            m = judge(Path(weights)) if m is None else m
            within = base_map - m <= budget
            record |= {"val_mAP50-95": m, "drop": base_map - m, "within_budget": within}
            if within:
                kept = final
        steps.append(record)
        log.info("prune step %d/%d: %s", i + 1, cfg.steps, record)
    kept_why = None
    if kept is not None and kept[0] != final[0]:
        last = steps[-1]
        kept_why = (
            f"kept step {kept[0]}, the last within the {budget} budget on val: step "
            f"{final[0]} is {last['drop']:.4f} below the base ({last['val_mAP50-95']:.4f} vs "
            f"{base_map:.4f})"
        )
        log.info("pruning: %s", kept_why)
    step, weights, after = kept or final
    if weights is None:  # no fine-tuning: save the pruned module itself
        weights = save_checkpoint(model, out_dir / "pruned.pt", dict(vars(ft_cfg)))
    return PruneOutcome(
        weights=Path(weights),
        before=before,
        after=after,
        steps=steps,
        seconds=time.perf_counter() - start,
        kept=step,
        kept_why=kept_why,
        ratios=ratios,
        scan=[vars(p) for p in probes] if probes is not None else None,
    )
