"""Validate: Great Expectations suite + file checks; fails the run on errors (report kept)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from zenml import step
from zenml.types import MarkdownString

from yeo.data import settings, validation
from yeo.data.model import StagedDataset, ValidationReport
from yeo.data.settings import DataConfig
from yeo.env import workspace
from yeo.errors import DataError
from yeo.tracking import log_step

log = logging.getLogger(__name__)


@step(enable_cache=False)
def validate_dataset(
    staged: StagedDataset, data: DataConfig
) -> tuple[
    Annotated[ValidationReport, "validation_report"],
    Annotated[MarkdownString, "validation_summary"],
]:
    """Validate the staged set; log the summary to MLflow; raise :class:`DataError` on errors."""

    folder = settings.report_dir(workspace(), staged.name)
    report = validation.validate(staged, folder, data.on_error, data.limits_config())
    files = {str(folder / "validation.md"): "data", str(folder / "validation.json"): "data"}
    if report.data_docs:
        files[str(Path(report.data_docs).parent)] = "data/gx_data_docs"
    log_step(
        "validate",
        metrics={
            "data.images": report.n_images,
            "data.boxes": report.n_boxes,
            "data.errors": len(report.errors),
            "data.warnings": len(report.warnings),
            "data.dropped": len(report.dropped_images),
        },
        files=files,
        dicts={"data/class_counts.json": report.class_counts},
        metadata={
            "validation_success": report.success,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "report": str(folder / "validation.md"),
        },
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
