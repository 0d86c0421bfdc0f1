"""Bundle: the selected variant as a verified edge bundle (folder + .tar.gz) with lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from yeo.bundle import BundleInfo, build
from yeo.data.model import DataVersion
from yeo.env import workspace
from yeo.optimize.settings import OptimizeConfig
from yeo.optimize.variants import Selection
from yeo.registry import register_bundle
from yeo.tracking import mlflow_run, run_name, step_metadata, variant_models, zenml_run_id


@step(enable_cache=False)
def build_bundle(
    selection: Selection, data_version: DataVersion, dataset: Path, optimize: OptimizeConfig
) -> tuple[Annotated[BundleInfo, "bundle"], Annotated[Path, "edge_bundle"]]:
    """Write ``edge/bundles/<name>-vN`` from the selected variant, verify it, log it, register
    it in MLflow as ``models:/<name>-edge@edge-candidate``; the folder itself is the
    ``edge_bundle`` artifact (ZenML tars it into the artifact store: another host takes it
    from there by name)."""
    import mlflow

    from edge.device import describe

    cfg = optimize.bundle
    name = cfg.name or f"yolov8n-{data_version.name}"
    ws = workspace()
    chosen = selection.selected or ""
    model = variant_models(selection.variants, {chosen}).get(chosen)
    with mlflow_run("bundle") as run:
        lineage = {
            "zenml_run_id": zenml_run_id() or "none",
            "zenml_run_name": run_name(),
            "mlflow_run_id": run.info.run_id,
        }
        info = build(
            selection,
            model,
            data_version,
            Path(dataset),
            ws.root / "edge" / "bundles",
            name,
            {"conf": cfg.conf, "iou": cfg.iou},
            lineage,
            cfg.golden_images,
            cfg.benchmark_runs,
            optimize.threads,
            cfg.arm64,
        )
        mlflow.log_artifact(str(ws.root / info.archive), "bundle")
        mlflow.log_metrics(
            {"bundle/p50_ms": info.benchmark_p50_ms, "bundle/e2e_p50_ms": info.end_to_end_p50_ms}
        )
        mlflow.set_tags(
            {
                "bundle.path": info.path,
                "bundle.version": info.version,
                "bundle.arm64": (info.arm64 or "off")[:5000],
            }
        )
        held = selection.held_out
        score = next(v for v in selection.variants if v.name == selection.selected)
        cpu = describe()
        tags = {
            "variant": info.variant,
            "bundle.version": info.version,
            "map50_95.val": f"{score.map50_95:.4f}",
            "data.dvc_hash": data_version.dvc_hash,
            "cpu": cpu["cpu"],
            "cpu.flags": " ".join(cpu["isa"]) or "none",  # type: ignore[arg-type]
        }
        if held and score.held_out:
            tags[f"map50_95.{held.split}"] = f"{score.held_out.map50_95:.4f}"
        version = register_bundle(ws.root / info.path, f"{name}-edge", tags)
        info.registered = f"models:/{name}-edge/{version}"
    step_metadata(info.model_dump())
    return info, ws.root / info.path
