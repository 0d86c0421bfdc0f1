"""MLflow tracking shared by every step: one MLflow run per ZenML pipeline run.

Steps find their pipeline's MLflow run by the ``zenml_run_id`` tag (creating it on first use),
so a run can be traced both ways: ZenML run metadata holds the MLflow run id and the MLflow
run is tagged with the ZenML run. Outside ZenML (tests, notebooks, ``dvc repro``) each call
gets a run of its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yeo.env import workspace

log = logging.getLogger(__name__)
EXPERIMENT = "yolo-edge-optimizer"


def _zenml_context() -> tuple[str, str] | None:
    """(run id, run name) of the ZenML pipeline run we are in, if any."""
    try:
        from zenml import get_step_context

        ctx = get_step_context()
    except (ImportError, RuntimeError):
        return None
    return str(ctx.pipeline_run.id), ctx.pipeline_run.name


@contextlib.contextmanager
def mlflow_run(step: str, experiment: str = EXPERIMENT) -> Iterator[Any]:
    """Open (or resume) the MLflow run of the current pipeline run, tagged with ``step``."""
    import mlflow

    ws = workspace()
    mlflow.set_tracking_uri(ws.mlflow_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        # a tracking server puts artifacts where it was told to (a team's bucket)
        local = ws.mlflow_artifacts.as_uri() if ws.mlflow_is_local else None
        mlflow.create_experiment(experiment, artifact_location=local)
    mlflow.set_experiment(experiment)
    zen = _zenml_context()
    run_id = None
    if zen:
        found = mlflow.search_runs(
            filter_string=f"tags.zenml_run_id = '{zen[0]}'", output_format="list", max_results=1
        )
        run_id = found[0].info.run_id if found else None
    while mlflow.active_run():  # never nest into a run somebody left open
        mlflow.end_run()
    with mlflow.start_run(run_id=run_id, run_name=zen[1] if zen and not run_id else None) as run:
        if zen:
            mlflow.set_tags({"zenml_run_id": zen[0], "zenml_run_name": zen[1]})
        mlflow.set_tag(f"step.{step}", "done")
        _link_zenml(run.info.run_id)
        yield run


def zenml_run_id() -> str | None:
    """The ZenML pipeline run id inside a step, else None."""
    zen = _zenml_context()
    return zen[0] if zen else None


def run_name() -> str:
    """The ZenML run name inside a step, else a timestamp: names output folders."""
    zen = _zenml_context()
    if zen:
        return zen[1]
    import datetime

    return datetime.datetime.now().strftime("run-%Y%m%d-%H%M%S")


def _link_zenml(mlflow_run_id: str) -> None:
    """Attach the MLflow run id to the current ZenML step as metadata (no-op outside ZenML)."""
    if _zenml_context() is None:
        return
    from zenml import log_metadata

    log_metadata({"mlflow_run_id": mlflow_run_id, "mlflow_uri": workspace().mlflow_uri})


def step_metadata(values: dict[str, Any]) -> None:
    """Log metadata on the current ZenML step; silently skipped outside a step."""
    if _zenml_context() is None:
        return
    from zenml import log_metadata

    log_metadata({k: v for k, v in values.items() if v is not None})


def mark_failed(exception: BaseException | None = None) -> None:
    """ZenML failure hook (every pipeline has it): the pipeline's MLflow run ends FAILED, with
    the failing step and the reason as tags, also when the step failed before it logged."""
    zen = _zenml_context()
    if zen is None:
        return
    try:
        from zenml import get_step_context

        step = get_step_context().step_run.name
        with mlflow_run(step) as run:
            import mlflow

            mlflow.set_tags(
                {
                    f"step.{step}": "failed",
                    "failed_step": step,
                    "failure": " ".join(str(exception).split())[:4000] or "unknown",
                }
            )
            run_id = run.info.run_id
        mlflow.MlflowClient().set_terminated(run_id, "FAILED")
    except Exception as e:  # a hook must never hide the step's own error
        log.warning("could not mark the MLflow run FAILED: %s", e)


def save_folder(folder: Path, name: str) -> str:
    """Store ``folder`` in the artifact store (ZenML tars it) as a new version of artifact
    ``name``; its id, which an artifact can carry instead of a local path."""
    from zenml import save_artifact

    return str(save_artifact(Path(folder), name=name).id)


def load_folder(artifact_id: str) -> Path:
    """A local copy of a folder stored by :func:`save_folder`, wherever this step runs (in a
    step, the copy is removed when the step ends)."""
    from uuid import UUID

    from zenml import load_artifact

    return Path(load_artifact(UUID(artifact_id)))


def variant_models(variants: list[Any], only: set[str] | None = None) -> dict[str, Path]:
    """Local copies of the variants' model files, by variant name, from the artifact store."""
    return {
        v.name: load_folder(v.artifact) / v.file
        for v in variants
        if v.artifact and (only is None or v.name in only)
    }


def log_step(
    step: str,
    *,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    series: list[dict[str, float]] | None = None,
    tags: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
    dicts: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """What a finished step did, in one call: into the pipeline's MLflow run (``params``,
    ``metrics``, ``series`` as one metric history step by step, ``tags``, ``files`` as
    {local file or folder: artifact folder}, ``dicts`` as {artifact file: JSON value}), and
    ``metadata`` onto the ZenML step. Steps that log while they work (training epochs) open
    :func:`mlflow_run` themselves."""
    import mlflow

    with mlflow_run(step):
        if params:
            mlflow.log_params(params)
        if metrics:
            mlflow.log_metrics(metrics)
        for i, values in enumerate(series or []):
            mlflow.log_metrics(values, step=i)
        if tags:
            mlflow.set_tags(tags)
        for path, folder in (files or {}).items():  # a folder: its contents
            (mlflow.log_artifacts if Path(path).is_dir() else mlflow.log_artifact)(path, folder)
        for name, value in (dicts or {}).items():
            mlflow.log_dict(value, name)
    if metadata:
        step_metadata(metadata)
