"""Take a bundle another machine built: fetch the ``edge_bundle`` artifact by name from the
ZenML store (on a team stack: the server, the bytes from S3), verify and benchmark it here,
and log what this machine measured to MLflow beside the run that built it.

Nothing of the producer's machine is read: the artifact is looked up by name and its bytes
come from the artifact store into ``out``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from pydantic import BaseModel

from yeo.errors import UserError

log = logging.getLogger(__name__)
ARTIFACT = "edge_bundle"


class Handoff(BaseModel):
    artifact_uri: str  # where the bytes came from (s3://... on a team stack)
    artifact_version: str
    path: str  # this machine's copy
    verify: str
    model_p50_ms: float
    end_to_end_p50_ms: float
    cpu: str
    cpu_flags: list[str]
    mlflow_run_id: str


def fetch(out: Path, version: str | None = None) -> tuple[Path, str, str]:
    """Copy the ``edge_bundle`` artifact (newest, or ``version``) into ``out/<bundle>``;
    returns (folder, artifact URI, artifact version)."""
    from zenml.client import Client

    from edge.fileio import replace_dir

    try:
        art = Client().get_artifact_version(ARTIFACT, version)
    except KeyError:
        raise UserError(
            f"no {ARTIFACT!r} artifact{f' version {version}' if version else ''} in the ZenML "
            "store: run the optimize pipeline (with bundling) first"
        ) from None
    src = Path(art.load())  # ZenML's PathMaterializer unpacks it into a temp folder
    meta = src / "metadata.json"
    if not meta.is_file():
        raise UserError(f"{ARTIFACT} version {art.version} ({art.uri}) is not a bundle")
    m = json.loads(meta.read_text())
    name = f"{m['name']}-{m['version']}"  # the folder name the producer gave it
    dest = out / name
    staging = out / f".{name}.fetch-{os.getpid()}"  # copy beside, then swap in: never half
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging)
    replace_dir(staging, dest)
    log.info("fetched %s version %s from %s into %s", ARTIFACT, art.version, art.uri, dest)
    return dest, art.uri, str(art.version)


def run(out: Path, version: str | None, threads: int, runs: int) -> Handoff:
    """Fetch, ``edge.verify``, ``edge.benchmark``, and log it all to MLflow (tag ``handoff``)."""
    import mlflow

    from edge import benchmark, verify
    from yeo.tracking import mlflow_run

    folder, uri, art_version = fetch(out, version)
    faults, summary = verify.verify(folder)
    if faults:
        raise UserError(f"{folder}: the fetched bundle does not verify: {faults[0]}")
    report = benchmark.run(folder, threads=threads, runs=runs, warmup=max(2, runs // 10))
    device = report["device"]
    with mlflow_run("handoff") as mrun:
        mlflow.set_tags(
            {
                "handoff.artifact_uri": uri,
                "handoff.artifact_version": art_version,
                "cpu": device["cpu"],
                "cpu.flags": " ".join(device["isa"]) or "none",
            }
        )
        mlflow.log_metrics(
            {
                "handoff/model_p50_ms": report["model_ms"]["p50_ms"],
                "handoff/e2e_p50_ms": report["end_to_end_ms"]["p50_ms"],
            }
        )
        mlflow.log_dict(report, "handoff/benchmark.json")
    return Handoff(
        artifact_uri=uri,
        artifact_version=art_version,
        path=str(folder),
        verify=summary,
        model_p50_ms=report["model_ms"]["p50_ms"],
        end_to_end_p50_ms=report["end_to_end_ms"]["p50_ms"],
        cpu=device["cpu"],
        cpu_flags=list(device["isa"]),
        mlflow_run_id=mrun.info.run_id,
    )
