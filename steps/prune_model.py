"""Prune: structured channel pruning + fine-tuning (torch-pruning), tracked in MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.env import workspace
from yeo.evaluation import EvalConfig, evaluate
from yeo.optimize.model import PruneSummary
from yeo.optimize.prune import footprint, prune_and_finetune
from yeo.optimize.settings import OptimizeConfig
from yeo.optimize.variants import VariantScore
from yeo.tracking import mlflow_run, run_name, step_metadata
from yeo.train import tracking
from yeo.train.config import TrainConfig


@step(enable_cache=False)
def prune_model(
    weights_dir: Path,
    dataset: Path,
    train: TrainConfig,
    optimize: OptimizeConfig,
    eval_cfg: EvalConfig,
    base_pt: VariantScore,
) -> tuple[Annotated[PruneSummary, "prune_summary"], Annotated[Path, "pruned_dir"]]:
    """Prune the base weights; the pruned dir holds ``best.pt`` (the pruned architecture):
    the last step within the budget of ``base_pt``'s val score, by the same evaluator
    (``optimize.prune.keep_within_budget``)."""
    import mlflow

    from yeo.optimize.finetune import load_module

    cfg, train_cfg = optimize.prune, train
    data_yaml = Path(dataset) / "data.yaml"
    settings = eval_cfg.settings(train_cfg.imgsz, train_cfg.device)

    def judge(weights: Path) -> float:
        return evaluate(weights, data_yaml, settings).map50_95

    out = workspace().outputs / "optimize" / run_name() / "prune"
    with mlflow_run("prune"):
        mlflow.log_params({f"prune.{k}": v for k, v in cfg.model_dump().items()})
        res = prune_and_finetune(
            Path(weights_dir) / "best.pt",
            Path(dataset) / "data.yaml",
            cfg,
            train_cfg,
            out,
            on_epoch_end=[tracking.log_epoch("prune/")],
            judge=judge,
            budget=optimize.max_map_drop if cfg.keep_within_budget else None,
            base_map=base_pt.map50_95,
        )
        summary = PruneSummary(
            enabled=True,
            ratio=cfg.ratio,
            steps=res.steps,
            params_before=res.before.params,
            params_after=res.after.params,
            macs_before=res.before.macs,
            macs_after=res.after.macs,
            seconds=res.seconds,
            imgsz=train_cfg.imgsz,
            activation=cfg.activation,
            distill=cfg.distill,
            kept=res.kept,
            kept_why=res.kept_why,
            schedule=cfg.schedule,
            ratios=res.ratios,
            scan=res.scan,
        )
        mlflow.log_metrics(
            {
                "prune/params_before": res.before.params,
                "prune/params_after": res.after.params,
                "prune/macs_before": res.before.macs,
                "prune/macs_after": res.after.macs,
                "prune/seconds": res.seconds,
            }
        )
        mlflow.log_dict(summary.model_dump(), "prune/summary.json")
    loaded = footprint(load_module(res.weights), train_cfg.imgsz)
    if loaded.params != res.after.params:  # the saved model must be the pruned one
        raise RuntimeError(
            f"pruned checkpoint has {loaded.params} params, expected "
            f"{res.after.params}: architecture was not kept"
        )
    folder = out / "model"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(res.weights, folder / "best.pt")
    step_metadata(
        {"params": [res.before.params, res.after.params], "macs": [res.before.macs, res.after.macs]}
    )
    return summary, folder
