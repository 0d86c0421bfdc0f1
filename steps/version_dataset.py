"""Version: publish the validated set into ``data/processed`` and record it with DVC."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.data import settings, versioning
from yeo.data.model import DataVersion, RawSource, StagedDataset, ValidationReport
from yeo.data.settings import DataConfig
from yeo.env import workspace
from yeo.tracking import log_step


@step(enable_cache=False)
def version_dataset(
    staged: StagedDataset, report: ValidationReport, raw: RawSource, data: DataConfig
) -> tuple[Annotated[DataVersion, "data_version"], Annotated[Path, "dataset"]]:
    """Publish atomically, ``dvc add`` (or record via dvc.yaml) and push to the local remote.
    The processed folder itself is the ``dataset`` artifact: later steps read it from the
    artifact store, so they run where this host's folders are not."""

    assert report.success, "version_dataset needs a passing validation report"
    ws = workspace()
    raw_dir = settings.raw_dir(ws, raw.name) if raw.generated else None
    dv = versioning.version(staged, ws.root, ws.dvc_remote, raw_dir, push=data.push)
    folder = ws.root / dv.location
    tags = {
        "data.dvc_hash": dv.dvc_hash,
        "data.name": dv.name,
        "data.tracked_by": dv.tracked_by,
        "data.location": dv.location,
    }
    log_step(
        "version",
        tags=tags | ({"data.raw_dvc_hash": dv.raw_dvc_hash} if dv.raw_dvc_hash else {}),
        files={str(folder / "data.yaml"): "data"},
        metadata={"dvc_hash": dv.dvc_hash, "tracked_by": dv.tracked_by, "at": dv.location},
    )
    return dv, folder
