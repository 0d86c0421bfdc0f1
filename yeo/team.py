"""Connecting this process to a team's engines: a shared ZenML server, an S3 bucket, PostgreSQL
for MLflow and Optuna (the local stand-in that ``python -m yeo.stack up`` starts, or a
company's own).

Their endpoints come from a settings file (``.state/stack/team.json``, written by ``up``) or
from the environment, which wins:

=====================  ===============================================================
``YEO_ZENML_URL``      the ZenML server (``ZENML_STORE_API_KEY`` authenticates a real one)
``YEO_MLFLOW_URI``     the MLflow tracking server (its backend store and artifacts are its own)
``YEO_S3_ENDPOINT``    the S3-compatible endpoint (empty for AWS itself)
``YEO_BUCKET``         the bucket: ZenML artifacts under ``zenml/``, MLflow's under ``mlflow/``
``YEO_OPTUNA_STORAGE`` the PostgreSQL URL a distributed Optuna study lives in
=====================  ===============================================================

Credentials are never written into code or config: S3 takes the standard ``AWS_*`` variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import BaseModel

from yeo.errors import ConfigError

STACK_NAME = "team"

ENV_KEYS = {
    "zenml_url": "YEO_ZENML_URL",
    "mlflow_uri": "YEO_MLFLOW_URI",
    "s3_endpoint": "YEO_S3_ENDPOINT",
    "bucket": "YEO_BUCKET",
    "optuna_storage": "YEO_OPTUNA_STORAGE",
}


class TeamStack(BaseModel):
    """Where a team's engines are. No credentials: those stay in the environment."""

    zenml_url: str
    mlflow_uri: str
    s3_endpoint: str | None = None
    bucket: str
    optuna_storage: str | None = None
    zenml_stack: str = STACK_NAME

    @property
    def artifact_root(self) -> str:
        return f"s3://{self.bucket}/zenml"


class Started(BaseModel):
    """What ``up`` started, for ``down``: process-group leaders and the PostgreSQL data dir."""

    stack: TeamStack
    pids: dict[str, int]
    pg_data: str
    pg_user: str | None
    logs: str


def settings_file(state: Path) -> Path:
    return state / "stack" / "team.json"


def load(state: Path) -> TeamStack:
    """The team stack from the environment, else from ``up``'s settings file."""
    found = {k: os.environ[v] for k, v in ENV_KEYS.items() if os.environ.get(v)}
    path = settings_file(state)
    if path.is_file():
        found = Started.model_validate_json(path.read_text()).stack.model_dump() | found
    missing = [ENV_KEYS[k] for k in ("zenml_url", "mlflow_uri", "bucket") if k not in found]
    if missing:
        raise ConfigError(
            f"stack=team: no team stack: run `make stack-up` (writes {path}) or set "
            + ", ".join(missing)
        )
    return TeamStack(**found)


def connect(stack: TeamStack, state: Path) -> None:
    """Point ZenML, MLflow and S3 clients of this process at the team stack.

    Call before ZenML is imported: its client reads ``ZENML_STORE_URL`` once. S3 credentials
    already in the environment win over the local stand-in's ``team.env``.
    """
    if "zenml" in sys.modules:
        raise RuntimeError("yeo.team.connect must run before zenml is imported")
    for key, value in credentials(state).items():
        os.environ.setdefault(key, value)
    zenml_client_env(stack, state)
    os.environ["YEO_MLFLOW_URI"] = stack.mlflow_uri
    os.environ["MLFLOW_TRACKING_URI"] = stack.mlflow_uri
    os.environ["MLFLOW_REGISTRY_URI"] = stack.mlflow_uri
    os.environ["YEO_BUCKET"] = stack.bucket
    if stack.s3_endpoint:
        os.environ["YEO_S3_ENDPOINT"] = stack.s3_endpoint
        os.environ["AWS_ENDPOINT_URL_S3"] = stack.s3_endpoint
    if stack.optuna_storage:
        os.environ["YEO_OPTUNA_STORAGE"] = stack.optuna_storage
    from zenml.client import Client

    Client().activate_stack(stack.zenml_stack)
    os.environ["ZENML_ACTIVE_STACK_ID"] = str(Client().active_stack_model.id)


def credentials(state: Path) -> dict[str, str]:
    """The local stand-in's S3 credentials (``team.env``), for clients that lack their own."""
    env = settings_file(state).with_name("team.env")
    if not env.is_file():
        return {}
    return dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line)


def zenml_client_env(stack: TeamStack, state: Path) -> None:
    """ZenML's client to the server, with a client config of its own: ZenML persists the
    store URL in it, and the local runs of this workspace must keep their local store."""
    os.environ["ZENML_CONFIG_PATH"] = str(state / "zenml-team" / "config")
    os.environ["ZENML_STORE_URL"] = stack.zenml_url
