"""Per-block pruning ratios from a sensitivity scan: which blocks can lose channels.

Uniform pruning takes the same fraction of channels from every layer. On a converged model a
few blocks carry most of the loss (the pruned converged YOLOv8n lost 0.12-0.13 val mAP at 25%
uniform). The scan prunes one block at a time, at each of ``scan_ratios`` and without
fine-tuning, and scores it on val with the project's evaluator (the sensitivity analysis of Li
et al., "Pruning Filters for Efficient ConvNets", 2017). :func:`allocate` then spends the MACs
saving that uniform pruning at ``ratio`` would give where it costs the least val mAP: greedy on
the marginal drop per MAC saved, each block's drop taken as the worst seen at or below a ratio
(so noise cannot make more pruning look cheaper than less), and checked by pruning a copy with
the ratios so far, since savings of neighbouring blocks overlap.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from yeo.optimize.pruner import Footprint, detect_tail, footprint, make_pruner, prune_step
from yeo.optimize.settings import PruneConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Probe:
    """One block pruned alone at ``ratio``, not fine-tuned."""

    block: str  # a top-level block of the network, e.g. "model.4"
    ratio: float
    drop: float  # val mAP50-95 below the unpruned model
    macs_saved: int
    params_saved: int


def blocks(model: nn.Module) -> list[str]:
    """Names of the top-level blocks (``model.0`` ... ``model.22``) holding a conv that may lose
    output channels (the Detect head's final convs may not: :func:`detect_tail`)."""
    fixed = {id(m) for m in detect_tail(model)}
    return [
        f"model.{i}"
        for i, block in enumerate(model.model)
        if any(isinstance(m, nn.Conv2d) and id(m) not in fixed for m in block.modules())
    ]


def pruned_copy(
    model: nn.Module, cfg: PruneConfig, imgsz: int, ratios: dict[str, float] | None
) -> nn.Module:
    """A copy of ``model`` pruned in one step: ``ratios`` (block -> fraction of channels), or
    ``cfg.ratio`` everywhere when None."""
    twin = copy.deepcopy(model)
    prune_step(make_pruner(twin, cfg.model_copy(update={"steps": 1}), imgsz, ratios), twin)
    return twin


def scan(
    model: nn.Module,
    cfg: PruneConfig,
    imgsz: int,
    judge: Callable[[Path], float],
    base_map: float,
    save: Callable[[nn.Module, Path], Path],
    progress: Callable[[str], None] = log.info,
) -> list[Probe]:
    """Each block of ``model`` pruned alone at each of ``cfg.scan_ratios``, saved (``save``:
    module, path -> checkpoint) and scored by ``judge`` against ``base_map``."""
    before = footprint(model, imgsz)
    names = blocks(model)
    probes: list[Probe] = []
    with tempfile.TemporaryDirectory(prefix="yeo-scan-") as tmp:
        for i, name in enumerate(names):
            for r in sorted(cfg.scan_ratios):
                twin = pruned_copy(model, cfg, imgsz, {name: r})
                fp = footprint(twin, imgsz)
                m = judge(save(twin, Path(tmp) / f"{name}-{r}.pt"))
                probes.append(
                    Probe(name, r, base_map - m, before.macs - fp.macs, before.params - fp.params)
                )
            row = ", ".join(
                f"{p.ratio:.2f}: {p.drop:+.4f}"
                if p.macs_saved
                else f"{p.ratio:.2f}: prunes nothing"
                for p in probes[-len(cfg.scan_ratios) :]
            )
            progress(f"sensitivity {i + 1}/{len(names)} {name}: val drop at {row}")
    return probes


def per_block_ratios(
    model: nn.Module, cfg: PruneConfig, imgsz: int, probes: list[Probe]
) -> dict[str, float]:
    """The ratios, from the scan's ``probes``, that save what uniform pruning at
    ``cfg.ratio`` saves in MACs."""
    before = footprint(model, imgsz)
    target = before.macs - footprint(pruned_copy(model, cfg, imgsz, None), imgsz).macs

    def measure(ratios: dict[str, float]) -> Footprint:
        return footprint(pruned_copy(model, cfg, imgsz, ratios), imgsz)

    ratios = allocate(probes, target, measure, before)
    log.info(
        "sensitivity: per-block ratios %s (uniform %.2f saves %d MACs)", ratios, cfg.ratio, target
    )
    return ratios


def allocate(
    probes: list[Probe],
    target_macs: int,
    measure: Callable[[dict[str, float]], Footprint],
    before: Footprint,
) -> dict[str, float]:
    """Per-block ratios saving at least ``target_macs`` MACs where val loses least (see the
    module's docstring). ``measure``: ratios -> the footprint of a copy pruned with them.
    Stops short (with a warning) when every block is at its largest scanned ratio."""
    levels: dict[str, list[Probe]] = {}
    for p in sorted(probes, key=lambda p: p.ratio):
        levels.setdefault(p.block, []).append(p)
    worst = {b: _envelope([max(p.drop, 0.0) for p in ps]) for b, ps in levels.items()}
    at = dict.fromkeys(levels, -1)  # index of each block's current level; -1: not pruned

    def cost(b: str, i: int) -> float:
        return 0.0 if i < 0 else worst[b][i]

    def gain(b: str, i: int) -> int:
        return 0 if i < 0 else levels[b][i].macs_saved

    def next_level(b: str, i: int) -> int | None:
        """The next level that saves more (``round_to`` can make two ratios prune alike)."""
        return next((j for j in range(i + 1, len(levels[b])) if gain(b, j) > gain(b, i)), None)

    ratios: dict[str, float] = {}
    while True:
        steps = [
            (
                (cost(b, j) - cost(b, i)) / (gain(b, j) - gain(b, i)),
                -(gain(b, j) - gain(b, i)),
                b,
                j,
            )
            for b, i in at.items()
            if (j := next_level(b, i)) is not None
        ]
        if not steps:
            log.warning("sensitivity: every block at its largest scanned ratio, short of target")
            return ratios
        _, _, b, j = min(steps)
        at[b] = j
        ratios[b] = levels[b][at[b]].ratio
        estimate = sum(gain(x, i) for x, i in at.items())  # overlaps: measured below
        if estimate >= target_macs and before.macs - measure(ratios).macs >= target_macs:
            return ratios


def _envelope(drops: list[float]) -> list[float]:
    """The running maximum: the drop at a ratio is at least the drop at any smaller one."""
    out, top = [], 0.0
    for d in drops:
        top = max(top, d)
        out.append(top)
    return out
