"""``--pipeline optimize``: data -> train (cached) or base model -> prune + fine-tune ->
ONNX -> INT8 within budget -> cut at the head (host decode) -> score every variant on val ->
time all interleaved, end to end, and select
-> score every variant once on the held-out test split -> report -> edge bundle."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from pipelines.train import prepared_data
from steps.build_bundle import build_bundle
from steps.export_onnx import export_model
from steps.finetune_base import finetune_base
from steps.import_base_model import import_base_model
from steps.prune_model import prune_model
from steps.quantize_int8 import quantize_int8
from steps.quantize_weights import openvino_int8
from steps.report_optimize import report_optimize
from steps.score_held_out import score_held_out
from steps.score_variant import score_variant
from steps.select_variant import select_variant
from steps.train_model import train_model
from yeo.data.settings import DataConfig
from yeo.evaluation import EvalConfig
from yeo.io import remove_staging
from yeo.optimize.export import MODEL_FILE
from yeo.optimize.settings import OptimizeConfig, use_nncf, use_openvino, use_w8
from yeo.tracking import mark_failed
from yeo.train.config import ModelConfig, TrainConfig


@pipeline(enable_cache=False, on_failure=mark_failed, on_cleanup=remove_staging)
def optimize_pipeline(
    data: DataConfig,
    train: TrainConfig,
    model: ModelConfig,
    eval_cfg: EvalConfig,
    optimize: OptimizeConfig,
) -> Any:
    """From a trained YOLOv8n to the fastest ONNX model within the accuracy budget, reported
    and bundled for the edge."""
    imgsz = train.imgsz
    data_version, dataset = prepared_data(data)
    if optimize.base_model:
        weights_dir = import_base_model(optimize.base_model)
    else:
        _, weights_dir = train_model.with_options(enable_cache=True)(
            data_version, dataset, train, model
        )

    sized: list[Any] = []  # the size axis' INT8 variants, for the select step
    # the backend axis: each ONNX variant's twin on OpenVINO (``<name>_ov``, the same file)
    openvino = use_openvino(optimize)
    w8 = use_w8(optimize)
    nncf = use_nncf(optimize)
    twins: list[Any] = []

    def on(model_dir: Any, filename: str, name: str, head: str, size: int, backend: str) -> Any:
        return score_variant(
            model_dir,
            filename,
            dataset,
            eval_cfg,
            size,
            name,
            train.device,
            head,
            backend,
            id=f"score_{name}",
        )

    def score(
        model_dir: Any, filename: str, name: str, head: str = optimize.head, size: int = imgsz
    ) -> Any:
        scored = on(model_dir, filename, name, head, size, "onnxruntime")  # a .pt: torch
        if openvino and filename.endswith(".onnx"):
            twins.append(on(model_dir, filename, f"{name}_ov", head, size, "openvino"))
        return scored

    def openvino_only(onnx_dir: Any, prefix: str, size: int, suffix: str = "") -> None:
        """``<prefix>_w8<suffix>_ov`` (int8 weights, float activations) and
        ``<prefix>_nncf<suffix>_ov`` (NNCF's INT8), on OpenVINO only: files OpenVINO runs at
        FP32's speed or as INT8, where onnxruntime runs them slower than the FP32 file."""
        kinds = [k for k, on_ in (("w8", w8), ("nncf", nncf)) if on_]
        for kind in kinds:
            folder = openvino_int8(
                onnx_dir,
                prefix + suffix,
                kind,
                dataset,
                size,
                optimize.quant,
                id=f"{kind}_int8_{prefix}{suffix}",
            )
            name = f"{prefix}_{kind}{suffix}_ov"
            twins.append(on(folder, MODEL_FILE, name, optimize.head, size, "openvino"))

    def int8_at(onnx_dir: Any, prefix: str, size: int, suffix: str = "") -> tuple[Any, Any]:
        int8_dir, trials = quantize_int8(
            onnx_dir,
            dataset,
            eval_cfg,
            size,
            optimize,
            prefix + suffix,
            id=f"quantize_{prefix}{suffix}",
        )
        return score(int8_dir, MODEL_FILE, f"{prefix}_int8{suffix}", size=size), trials

    def onnx_variants(model_dir: Any, prefix: str) -> tuple[Any, Any, Any]:
        onnx_dir, _ = export_model(
            model_dir, dataset, imgsz, optimize, prefix, id=f"export_{prefix}"
        )
        # base_fp32 decodes in the graph: the reference every speed-up is against
        head = "graph" if prefix == "base" else optimize.head
        fp32 = score(onnx_dir, MODEL_FILE, f"{prefix}_fp32", head)
        int8 = trials = None
        if optimize.quant.enabled:
            int8, trials = int8_at(onnx_dir, prefix, imgsz)
        openvino_only(onnx_dir, prefix, imgsz)
        for size in optimize.sizes_below(imgsz):  # the size axis: FP32 and INT8, smaller inputs
            sized_dir, _ = export_model(
                model_dir, dataset, size, optimize, f"{prefix}_{size}", id=f"export_{prefix}_{size}"
            )
            # FP32 too: OpenVINO runs it in bf16 on AMX CPUs, faster than any INT8 file there
            sized.append(score(sized_dir, MODEL_FILE, f"{prefix}_fp32_{size}", size=size))
            if optimize.quant.enabled:
                sized.append(int8_at(sized_dir, prefix, size, f"_{size}")[0])
            openvino_only(sized_dir, prefix, size, f"_{size}")
        return fp32, int8, trials

    base_pt = score(weights_dir, "best.pt", "base_pt")
    base_fp32, base_int8, base_trials = onnx_variants(weights_dir, "base")
    pruned_fp32 = pruned_int8 = pruned_trials = prune_summary = base_ft = None
    if optimize.prune.enabled:
        prune_summary, pruned_dir = prune_model(
            weights_dir, dataset, train, optimize, eval_cfg, base_pt
        )
        pruned_fp32, pruned_int8, pruned_trials = onnx_variants(pruned_dir, "pruned")
        if optimize.prune.control and optimize.prune.finetune_epochs > 0:
            base_ft_dir = finetune_base(weights_dir, dataset, train, optimize, eval_cfg)
            base_ft = score(base_ft_dir, "best.pt", "base_ft")
    chosen, _ = select_variant(
        optimize,
        dataset,
        base_pt,
        base_fp32,
        base_int8=base_int8,
        pruned_fp32=pruned_fp32,
        pruned_int8=pruned_int8,
        prune_summary=prune_summary,
        base_ft=base_ft,
        **({"sized": sized} if sized else {}),  # artifacts, or the step's default
        **({"openvino": twins} if twins else {}),
    )
    selection = score_held_out(chosen, dataset, eval_cfg, imgsz, train.device)
    config = {  # plain values for the report
        "data": data.model_dump(),
        "train": train.model_dump(),
        "model": model.model_dump(),
        "eval": eval_cfg.model_dump(),
        "optimize": optimize.model_dump(),
    }
    report_optimize(  # fails the run here if none qualified
        selection,
        data_version,
        dataset,
        optimize,
        config,
        base_trials=base_trials,
        pruned_trials=pruned_trials,
        prune_summary=prune_summary,
    )
    if optimize.bundle.enabled:
        build_bundle(selection, data_version, dataset, optimize, after="report_optimize")
