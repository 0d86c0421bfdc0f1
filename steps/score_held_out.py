"""Held-out: every variant scored once on the test split after the choice, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.env import workspace
from yeo.evaluation import EvalConfig
from yeo.optimize.heldout import score_held_out as score
from yeo.optimize.variants import Selection, write_tables
from yeo.tracking import log_step, run_name, variant_models


@step(enable_cache=False)
def score_held_out(
    selection: Selection,
    dataset: Path,
    eval_cfg: EvalConfig,
    imgsz: int,
    device: str | int = "auto",
) -> Annotated[Selection, "selection"]:
    """The selection with held-out mAPs, 95% intervals and the budget verdict; the variants
    table is rewritten with them."""

    sel = score(
        selection,
        variant_models(selection.variants),
        Path(dataset) / "data.yaml",
        eval_cfg.settings(imgsz, device),
    )
    h = sel.held_out
    js, md = write_tables(sel, workspace().outputs / "optimize" / run_name())
    metrics = {}
    for v in sel.variants:
        if v.held_out:
            metrics |= {
                f"{v.name}/{h.split}_mAP50-95": v.held_out.map50_95,
                f"{v.name}/{h.split}_mAP50-95_ci_low": v.held_out.ci95[0],
                f"{v.name}/{h.split}_mAP50-95_ci_high": v.held_out.ci95[1],
            }
    log_step(
        "held_out",
        metrics=metrics,
        tags={"optimize.verdict": h.verdict[:5000]},
        files={str(js): "optimize", str(md): "optimize"},
        metadata={"split": h.split, "images": h.n_images, "verdict": h.verdict},
    )
    return sel
