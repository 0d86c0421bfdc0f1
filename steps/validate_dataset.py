"""Validate: Great Expectations suite + file checks; fails the run on errors (report kept)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from zenml import step
from zenml.types import MarkdownString

from yeo.data import settings, validation
from yeo.data.model import StagedDataset, ValidationReport
from yeo.env import workspace
from yeo.errors import DataError
from yeo.tracking import mlflow_run, step_metadata

log = logging.getLogger(__name__)


@step(enable_cache=False)
def validate_dataset(
    staged: StagedDataset, data: dict[str, Any]
) -> tuple[
    Annotated[ValidationReport, "validation_report"],
    Annotated[MarkdownString, "validation_summary"],
]:
    """Validate the staged set; log the summary to MLflow; raise :class:`DataError` on errors."""
    import mlflow

    folder = settings.report_dir(workspace(), staged.name)
    report = validation.validate(
        staged, folder, data.get("on_error", "fail"), settings.limits(data)
    )
    with mlflow_run("validate"):
        mlflow.log_metrics(
            {
                "data.images": report.n_images,
                "data.boxes": report.n_boxes,
                "data.errors": len(report.errors),
                "data.warnings": len(report.warnings),
                "data.dropped": len(report.dropped_images),
            }
        )
        mlflow.log_dict(report.class_counts, "data/class_counts.json")
        mlflow.log_artifact(str(folder / "validation.md"), "data")
        mlflow.log_artifact(str(folder / "validation.json"), "data")
        if report.data_docs:
            mlflow.log_artifacts(str(Path(report.data_docs).parent), "data/gx_data_docs")
    step_metadata(
        {
            "validation_success": report.success,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "report": str(folder / "validation.md"),
        }
    )
    for fault in report.faults:
        (log.error if fault.severity == "error" else log.warning)(fault.line())
    if not report.success:
        n = len(report.errors)
        raise DataError(
            f"{staged.name}: validation failed with {n} error{'s' * (n != 1)} "
            f"(first: {report.errors[0].file}: {report.errors[0].fault}); "
            f"report: {folder / 'validation.md'}"
        )
    summary = (folder / "validation.md").read_text()
    return report, MarkdownString(summary)
