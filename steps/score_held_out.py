"""Held-out: every variant scored once on the test split after the choice, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from zenml import step

from steps.evaluate import settings_from_config
from yeo.env import workspace
from yeo.optimize.heldout import score_held_out as score
from yeo.optimize.variants import Selection, write_tables
from yeo.tracking import mlflow_run, run_name, step_metadata, variant_models


@step(enable_cache=False)
def score_held_out(
    selection: Selection,
    dataset: Path,
    eval_cfg: dict[str, Any],
    imgsz: int,
    device: str = "auto",
) -> Annotated[Selection, "selection"]:
    """The selection with held-out mAPs, 95% intervals and the budget verdict; the variants
    table is rewritten with them."""
    import mlflow

    sel = score(
        selection,
        variant_models(selection.variants),
        Path(dataset) / "data.yaml",
        settings_from_config(eval_cfg, imgsz, device),
    )
    h = sel.held_out
    js, md = write_tables(sel, workspace().outputs / "optimize" / run_name())
    with mlflow_run("held_out"):
        for v in sel.variants:
            if v.held_out:
                mlflow.log_metrics(
                    {
                        f"{v.name}/{h.split}_mAP50-95": v.held_out.map50_95,
                        f"{v.name}/{h.split}_mAP50-95_ci_low": v.held_out.ci95[0],
                        f"{v.name}/{h.split}_mAP50-95_ci_high": v.held_out.ci95[1],
                    }
                )
        mlflow.set_tag("optimize.verdict", h.verdict[:5000])
        mlflow.log_artifact(str(js), "optimize")
        mlflow.log_artifact(str(md), "optimize")
    step_metadata({"split": h.split, "images": h.n_images, "verdict": h.verdict})
    return sel
