"""Report: report.json / .md / self-contained .html with plots, logged to MLflow and shown
as the step's ZenML visualization."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from zenml import step
from zenml.types import HTMLString

from yeo.data.model import DataVersion
from yeo.env import workspace
from yeo.errors import UserError
from yeo.optimize.model import PruneSummary, QuantSummary
from yeo.optimize.settings import OptimizeConfig
from yeo.optimize.variants import Selection
from yeo.report.render import HowChosen, write_report
from yeo.tracking import log_step, run_name, variant_models


class BudgetError(UserError):
    """No variant met the accuracy budget (report, table and models are kept)."""


class OverBudgetError(UserError):
    """The held-out split confirms the selected variant over the budget: val chose a model
    that breaks the promise (report, table and models are kept; no bundle).
    ``optimize.allow_over_budget=true`` bundles anyway."""


class VacuousError(UserError):
    """The base is under the floor, so the budget verdict means nothing (report, table and
    models are kept; no bundle). ``optimize.allow_vacuous=true`` bundles anyway."""


@step(enable_cache=False)
def report_optimize(
    selection: Selection,
    data_version: DataVersion,
    dataset: Path,
    optimize: OptimizeConfig,
    config: dict[str, Any],
    base_trials: QuantSummary | None = None,
    pruned_trials: QuantSummary | None = None,
    prune_summary: PruneSummary | None = None,
) -> Annotated[HTMLString, "report"]:
    """Write the run's report beside its variants table; the HTML is the step's output.
    Raises afterwards, so the run stops before the bundle: :class:`BudgetError` when no
    variant met the budget on val, :class:`VacuousError` when the base is under the floor,
    :class:`OverBudgetError` when the held-out split confirms the selected one over it
    (``optimize`` decides; ``config`` is the whole run's config, as plain values for the
    report)."""

    folder = workspace().outputs / "optimize" / run_name()
    how = HowChosen(
        int8=[q for q in (base_trials, pruned_trials) if q],
        prune=prune_summary,
        conf=optimize.bundle.conf,
    )
    onnx = {v.name for v in selection.variants if v.format == "onnx"}
    files = write_report(
        folder,
        selection,
        run_name(),
        data_version.model_dump(),
        config,
        how,
        variant_models(selection.variants, onnx),
        Path(dataset),
    )
    log_step(
        "report",
        files={
            str(p): "report/plots" if Path(p).suffix == ".png" else "report" for p in files.values()
        },
        metadata={"report": str(files["html"]), "plots": len(files) - 3},
    )
    if selection.selected is None:
        raise BudgetError(f"{selection.reason}; report: {files['html']}")
    held = selection.held_out
    if held is not None and held.vacuous and not optimize.allow_vacuous:
        raise VacuousError(
            f"vacuous verdict: the base did not learn enough for a budget to mean anything "
            f"({held.floor}); no bundle (optimize.allow_vacuous=true bundles anyway); report: "
            f"{files['html']}"
        )
    if held is not None and held.breached and not optimize.allow_over_budget:
        raise OverBudgetError(
            f"over budget on held-out data: {held.verdict}; val chose a model the {held.split} "
            "split rejects (a larger val split chooses surer); no bundle "
            f"(optimize.allow_over_budget=true bundles anyway); report: {files['html']}"
        )
    return HTMLString(Path(files["html"]).read_text())
