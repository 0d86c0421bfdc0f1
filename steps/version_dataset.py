"""Version: publish the validated set into ``data/processed`` and record it with DVC."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from zenml import step

from yeo.data import settings, versioning
from yeo.data.model import DataVersion, RawSource, StagedDataset, ValidationReport
from yeo.env import workspace
from yeo.tracking import mlflow_run, step_metadata


@step(enable_cache=False)
def version_dataset(
    staged: StagedDataset, report: ValidationReport, raw: RawSource, data: dict[str, Any]
) -> tuple[Annotated[DataVersion, "data_version"], Annotated[Path, "dataset"]]:
    """Publish atomically, ``dvc add`` (or record via dvc.yaml) and push to the local remote.
    The processed folder itself is the ``dataset`` artifact: later steps read it from the
    artifact store, so they run where this host's folders are not."""
    import mlflow

    assert report.success, "version_dataset needs a passing validation report"
    ws = workspace()
    raw_dir = settings.raw_dir(ws, raw.name) if raw.generated else None
    dv = versioning.version(staged, ws.root, ws.dvc_remote, raw_dir, push=bool(data.get("push")))
    folder = ws.root / dv.location
    with mlflow_run("version"):
        mlflow.set_tags(
            {
                "data.dvc_hash": dv.dvc_hash,
                "data.name": dv.name,
                "data.tracked_by": dv.tracked_by,
                "data.location": dv.location,
            }
        )
        if dv.raw_dvc_hash:
            mlflow.set_tag("data.raw_dvc_hash", dv.raw_dvc_hash)
        mlflow.log_artifact(str(folder / "data.yaml"), "data")
    step_metadata({"dvc_hash": dv.dvc_hash, "tracked_by": dv.tracked_by, "at": dv.location})
    return dv, folder
