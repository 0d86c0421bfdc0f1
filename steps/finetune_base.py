"""The fair control: the unpruned base fine-tuned on the pruned copy's schedule (``base_ft``),
so the report can tell extra training from the effect of pruning."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.env import workspace
from yeo.evaluation import EvalConfig, evaluate
from yeo.optimize.prune import finetune_control
from yeo.optimize.settings import OptimizeConfig
from yeo.tracking import mlflow_run, run_name, step_metadata
from yeo.train import tracking
from yeo.train.config import TrainConfig


@step(enable_cache=False)
def finetune_base(
    weights_dir: Path,
    dataset: Path,
    train: TrainConfig,
    optimize: OptimizeConfig,
    eval_cfg: EvalConfig,
) -> Annotated[Path, "base_ft_dir"]:
    """Fine-tune the base weights as the prune step fine-tunes its pruned copy (the same
    schedule, each checkpoint chosen the same way by the evaluator on val); the folder holds
    ``best.pt``."""
    import mlflow

    cfg = optimize.prune
    epochs = cfg.steps * cfg.finetune_epochs
    out = workspace().outputs / "optimize" / run_name() / "base_ft"
    data_yaml = Path(dataset) / "data.yaml"
    settings = eval_cfg.settings(train.imgsz, train.device)
    with mlflow_run("base_ft"):
        weights, steps = finetune_control(
            Path(weights_dir) / "best.pt",
            data_yaml,
            cfg,
            train,
            out,
            on_epoch_end=[tracking.log_epoch("base_ft/")],
            judge=lambda w: evaluate(w, data_yaml, settings).map50_95,
        )
        seconds = sum(s["finetune_seconds"] for s in steps)
        mlflow.log_metrics({"base_ft/seconds": seconds, "base_ft/epochs": epochs})
        mlflow.log_dict({"steps": steps}, "base_ft/steps.json")
    folder = out / "model"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(weights, folder / "best.pt")
    step_metadata({"epochs": epochs, "seconds": round(seconds, 1)})
    return folder
