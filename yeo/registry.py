"""MLflow model registry: register trained weights, resolve a model URI back to a file.

The registered model is an MLflow pyfunc wrapping the ultralytics weights, so
``mlflow.pyfunc.load_model("models:/NAME/VERSION")`` predicts, and later pipelines can take
``models:/NAME/VERSION`` (or ``runs:/...``) wherever they take a weights path.
"""

from __future__ import annotations

import logging
from pathlib import Path

from yeo.env import configure_ultralytics, workspace
from yeo.errors import ConfigError

log = logging.getLogger(__name__)
WEIGHTS_KEY = "weights"  # the artifact key yeo/mlflow_model.py reads


def log_and_register(weights: Path, name: str, tags: dict[str, str] | None = None) -> str:
    """Log ``weights`` as a pyfunc model in the active MLflow run and register a new version."""
    import mlflow
    import ultralytics

    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("mlflow_model.py")),
        artifacts={WEIGHTS_KEY: str(weights)},
        pip_requirements=[f"ultralytics=={ultralytics.__version__}"],
    )
    version = mlflow.register_model(info.model_uri, name, tags=tags)
    log.info("registered %s version %s", name, version.version)
    return str(version.version)


EDGE_ALIAS = "edge-candidate"


def register_bundle(folder: Path, name: str, tags: dict[str, str]) -> str:
    """Log an edge bundle folder in the active MLflow run and register it as a new version of
    ``name``, aliased ``edge-candidate`` (the newest selected model a device team should take:
    ``models:/NAME@edge-candidate``)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.log_artifacts(str(folder), "edge_bundle")
    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as e:  # already there: a new version of it
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # a folder of files, not an MLflow model: registered by its artifact URI
    version = client.create_model_version(
        name, mlflow.get_artifact_uri("edge_bundle"), mlflow.active_run().info.run_id, tags
    )
    client.set_registered_model_alias(name, EDGE_ALIAS, version.version)
    log.info("registered %s version %s as @%s", name, version.version, EDGE_ALIAS)
    return str(version.version)


def trained_imgsz(weights: Path) -> int | None:
    """The input size an ultralytics checkpoint was trained at (its ``train_args.imgsz``),
    or None when it does not record one."""
    configure_ultralytics()
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(weights))
    size = (ckpt.get("train_args") or {}).get("imgsz") if isinstance(ckpt, dict) else None
    size = size[0] if isinstance(size, list | tuple) and size else size
    return int(size) if isinstance(size, int | float) and size > 0 else None


def resolve_weights(uri_or_path: str) -> Path:
    """A weights file from a local path or an MLflow ``models:/`` / ``runs:/`` URI."""
    if "://" not in uri_or_path and ":/" not in uri_or_path:
        path = Path(uri_or_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: model file not found")
        return path
    import mlflow

    mlflow.set_tracking_uri(workspace().mlflow_uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(uri_or_path))
    except Exception as e:  # MLflow raises several types for a bad URI
        raise ConfigError(f"{uri_or_path}: cannot resolve MLflow model ({e})") from None
    found = sorted(local.rglob("*.pt")) if local.is_dir() else [local]
    if not found:
        raise ConfigError(f"{uri_or_path}: no .pt weights inside the MLflow model")
    return found[0]
