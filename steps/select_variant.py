"""Select: time every ONNX variant together, interleaved, end to end; pick the fastest
within the accuracy budget on val (None when no variant is)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step
from zenml.types import MarkdownString

from yeo.env import workspace
from yeo.optimize.dataset import busiest_images
from yeo.optimize.model import PruneSummary
from yeo.optimize.settings import OptimizeConfig, backends_tried
from yeo.optimize.variants import (
    Selection,
    VariantScore,
    select,
    time_interleaved,
    write_tables,
)
from yeo.tracking import log_step, run_name, variant_models

Outputs = tuple[Annotated[Selection, "choice"], Annotated[MarkdownString, "variants_table"]]


@step(enable_cache=False)
def select_variant(
    optimize: OptimizeConfig,
    dataset: Path,
    base_pt: VariantScore,
    base_fp32: VariantScore,
    base_int8: VariantScore | None = None,
    pruned_fp32: VariantScore | None = None,
    pruned_int8: VariantScore | None = None,
    prune_summary: PruneSummary | None = None,
    base_ft: VariantScore | None = None,
    sized: tuple[VariantScore, ...] = (),  # ZenML loads a list of artifacts into a collection
    openvino: tuple[VariantScore, ...] = (),
) -> Outputs:
    """Write the variants table (JSON + Markdown) and pick. No qualifying variant is not an
    error here: the report step writes the report first, then fails the run. ``sized``: the
    INT8 variants of the size axis (``optimize.sizes``); ``openvino``: every ONNX variant's
    twin on OpenVINO (``optimize.openvino``)."""

    variants = [v for v in (base_pt, base_ft, base_fp32, base_int8, pruned_fp32, pruned_int8) if v]
    variants += sized  # the size axis: INT8 variants at smaller inputs
    variants += openvino  # the backend axis
    if prune_summary:
        for v in variants:
            before = not v.pruned
            v.params = prune_summary.params_before if before else prune_summary.params_after
            macs = prune_summary.macs_before if before else prune_summary.macs_after
            # counted at the base's size; MACs scale with the input's area
            v.macs = (
                round(macs * (v.imgsz / base_pt.imgsz) ** 2) if v.imgsz and base_pt.imgsz else macs
            )
    lat = optimize.latency
    (image,) = busiest_images(Path(dataset), "val", 1)
    timing = time_interleaved(
        variants,
        variant_models(variants, {v.name for v in variants if v.format == "onnx"}),  # timed ones
        image,
        optimize.threads,
        lat.warmup,
        lat.rounds,
        lat.runs,
        optimize.bundle.conf,
        image_label=image.relative_to(dataset).as_posix(),
    )
    sel = select(variants, "base_pt", optimize.max_map_drop, optimize.min_base_map)
    sel.timing = timing
    sel.backends = backends_tried(optimize, next((v.runs for v in openvino if v.runs), None))
    folder = workspace().outputs / "optimize" / run_name()
    js, md = write_tables(sel, folder)
    log_step(
        "select",
        metrics={f"{v.name}/p50_ms": v.p50_ms for v in variants if v.p50_ms is not None},
        tags={"optimize.selected": sel.selected or "none"},
        files={str(js): "optimize", str(md): "optimize"},
        metadata={"selected": sel.selected, "reason": sel.reason, "table": str(md)},
    )
    return sel, MarkdownString(md.read_text())
