"""The edge bundle of an optimize run: metadata with full lineage, model card, build + verify.

The bundle itself is written by :mod:`edge.bundle` (edge dependencies only); this module
adds what only the pipeline knows: data version, git commit, ZenML and MLflow run ids, and
the variants table for the model card.
"""

from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge import bundle as edge_bundle
from edge import bundle_format, postprocess
from edge.verify import verify
from yeo.data.model import DataVersion
from yeo.env import CODE_ROOT, workspace
from yeo.errors import UserError
from yeo.optimize.export import onnx_metadata
from yeo.optimize.variants import HeldOut, Selection, VariantScore, markdown_table, table_notes


class BundleInfo(BaseModel):
    name: str
    version: str
    path: str
    archive: str
    variant: str
    verify: str  # edge.verify's summary line
    benchmark_p50_ms: float
    end_to_end_p50_ms: float
    registered: str | None = None  # models:/NAME/VERSION in MLflow's registry
    arm64: str | None = None  # the emulated Arm64 check: what it saw, or why it did not run


def git_commit() -> str:
    """HEAD of the code that built the bundle, with ``-dirty`` for uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=CODE_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=CODE_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def next_version(parent: Path, name: str) -> str:
    """``v1``, ``v2``, ... after the highest existing ``<name>-vN`` bundle in ``parent``."""
    pattern = re.compile(rf"^{re.escape(name)}-v(\d+)$")
    found = [int(m.group(1)) for p in parent.glob(f"{name}-v*") if (m := pattern.match(p.name))]
    return f"v{max(found, default=0) + 1}"


def onnx_facts(path: Path) -> dict[str, Any]:
    """Opset, stride and the quantization recipe recorded in the ONNX file."""
    meta, opset = onnx_metadata(path)
    stride = meta.get("stride")
    return {
        "opset": opset,
        "stride": int(stride) if stride is not None else None,
        "quantization": meta.get("quantization"),
    }


def metadata(
    name: str,
    version: str,
    chosen: VariantScore,
    model: Path,
    data: DataVersion,
    thresholds: dict[str, float],
    lineage: dict[str, str],
    held_out: HeldOut | None = None,
) -> dict[str, Any]:
    facts = onnx_facts(model)
    h = chosen.held_out
    metrics = (
        {
            "map50_95": h.map50_95,
            "map50_95_ci95": list(h.ci95),
            "map50": h.map50,
            "drop_vs_base_pt": h.drop,
            "drop_ci95": list(h.drop_ci95),
            "split": held_out.split,
            "independent_of_selection": held_out.independent,
            "images": held_out.n_images,
            "bootstrap_resamples": held_out.resamples,
            "verdict": held_out.verdict,
        }
        if h and held_out
        else {"map50_95": chosen.map50_95, "map50": chosen.map50, "split": "val"}
    )
    return {
        "name": name,
        "version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "precision": chosen.precision,
        # what it was chosen on, and runs on: edge.runtime, edge.verify and edge.benchmark use
        # it when installed (the golden outputs are onnxruntime's, the reference for ports)
        "runtime": {"backend": chosen.backend, "computes_in": chosen.runs or "as stored"},
        "model": {
            "variant": chosen.name,
            "head": chosen.head,  # raw: decoded on the host (see "output")
            "opset": facts["opset"],
            "params": chosen.params,
            "macs": chosen.macs,
            "quantization": facts["quantization"],
        },
        "classes": dict(enumerate(data.names)),
        "stride": facts["stride"],
        "thresholds": {
            "conf": thresholds["conf"],
            "iou": thresholds["iou"],
            "max_det": postprocess.MAX_DET,
            "nms": postprocess.NMS_MODE,
        },
        "metrics": {
            **metrics,
            "selection": {  # the val split chose this variant
                "split": "val",
                "map50_95": chosen.map50_95,
                "precision": chosen.precision_,
                "recall": chosen.recall,
            },
            "p50_ms_build_machine": chosen.p50_ms,
        },
        "source": {
            "data_name": data.name,
            "data_dvc_hash": data.dvc_hash,
            "data_tracked_by": data.tracked_by,
            "git_commit": git_commit(),
            **lineage,
        },
    }


KEPT_FP32 = {
    "tail": "the Detect head's decode tail (DFL softmax, box decode, concat)",
    "head": "the whole Detect head",
    "head+stem": "the whole Detect head and the stem conv (the image's first layer)",
    "none": "none",
}
WEIGHT_RANGE = {
    "nncf": "int8 weights, symmetric per output channel, as NNCF sets them for OpenVINO's CPU "
    "plugin",
    "pairsafe": "int8 per-channel weights scaled so that any two of a channel add up to at "
    "most 128 (no int16 saturation on CPUs without VNNI)",
    "7bit": "7-bit weights in [-64, 64] (onnxruntime reduce_range; no int16 saturation)",
    "checked": "int8 per-channel weights at the range calibration gave them (INC does not "
    "apply reduce_range), checked on the model: no two of a channel add up past 128 (no int16 "
    "saturation on CPUs without VNNI)",
    "full": "full-range int8 weights: on x86 CPUs without VNNI onnxruntime's int16 pair sums "
    "can saturate, so outputs and accuracy depend on the CPU",
}


def int8_limits(q: dict[str, Any]) -> str:
    """What the INT8 recipe that ran means for a user, from the recipe recorded in the model."""
    acts = {"u8": "uint8", "s8": "int8"}.get(q.get("activation", "u8"), q.get("activation"))
    weights = WEIGHT_RANGE.get(q.get("weights", "full"), "n/a")
    if q.get("backend") == "inc-autotune":
        weights = WEIGHT_RANGE["checked" if q.get("portable") else "full"]
    portable = (
        "The same outputs on every x86 CPU kind (checked statically when it was built)."
        if q.get("portable")
        else "Run `python -m edge.verify` on each target CPU kind before trusting it there."
    )
    return f"activations {acts}, {weights}. {portable}"


def _int8_tool(q: dict[str, Any]) -> str:
    """What quantized the file, as the card says it."""
    if q.get("backend") == "nncf":
        return f"NNCF {q.get('nncf', '')} post-training quantization for OpenVINO's CPU plugin"
    return "onnxruntime static quantization"


def _change(sel: Selection, chosen: VariantScore) -> str:
    """The selected variant's change vs the base .pt: held-out with its paired interval."""
    h = chosen.held_out
    if h and sel.held_out:
        lo, hi = h.drop_ci95
        return f"{-h.drop:+.4f} [95% interval {-hi:+.3f}, {-lo:+.3f}] on {sel.held_out.split}"
    return f"{chosen.map50_95 - sel.base_map50_95:+.4f} on val"


def _runtime(meta: dict[str, Any]) -> str:
    """What runs the bundle, as the card says it."""
    rt = meta.get("runtime") or {"backend": "onnxruntime"}
    if rt["backend"] == "onnxruntime":
        return (
            "onnxruntime, reading `model.onnx` (or the ORT-format twins): what scored, timed and "
            "chose this variant; the golden outputs are its own."
        )
    return (
        f"{rt['backend']}, reading `model.onnx`: what scored, timed and chose this variant (it "
        f"computed in {rt.get('computes_in')} on the build machine's CPU; OpenVINO computes in "
        "bf16 where the CPU has AMX or AVX512-BF16, else in f32). `edge.runtime`, `edge.verify` "
        f"and `edge.benchmark` run it on {rt['backend']} when it is installed (`pip install "
        f"{rt['backend']}`), else on onnxruntime. The golden outputs are onnxruntime's (every "
        "port's reference) with a tolerance that covers OpenVINO's (`golden/golden.json` "
        "`observed.openvino_default`)."
    )


def _outputs(meta: dict[str, Any]) -> str:
    out = meta["output"]
    if out.get("layout") != "raw_head":
        return f"One tensor {out['shape']}: {out['layout']}."
    shapes = ", ".join(f"{t['kind']} {t['shape']}" for t in out["tensors"])
    return (
        f"The graph ends at the Detect head's convs ({len(out['tensors'])} tensors: {shapes}); "
        "the DFL softmax, box decode and NMS run on the host, only for anchors whose best class "
        "logit passes the threshold (`edge/postprocess.py` `decode_raw_head`; `metadata.json` "
        "`output.decode` spells it out for a port; golden outputs are `golden/NNN.output.npz`)."
    )


SMALL_PX = 32  # COCO's "small object" side, here at the model's input size
FEW_IMAGES = 1000  # below this, a detector's recall on unseen conditions is the usual worry


def training_data_facts(dataset: Path, imgsz: int) -> str:
    """The model card's line on the training data, read off the processed dataset: images,
    boxes, the rarest class and how many boxes are small at the model's input size."""
    import pandas as pd

    rows = pd.read_parquet(Path(dataset) / "metadata.parquet")
    train = rows[rows["split"] == "train"]
    boxes = train.dropna(subset=["class_id"])
    n_images = train["image"].nunique()
    if boxes.empty:
        return f"- Trained on {n_images} images without a single box."
    scale = imgsz / boxes[["width", "height"]].max(axis=1)  # letterboxed to imgsz
    side = ((boxes["w"] * boxes["width"]) * (boxes["h"] * boxes["height"])) ** 0.5 * scale
    counts = boxes["class_name"].value_counts()
    text = (
        f"- Trained on {n_images} images with {len(boxes)} boxes; the rarest class, "
        f"{counts.index[-1]}, has {counts.iloc[-1]}. {(side < SMALL_PX).mean():.0%} of the boxes "
        f"are smaller than {SMALL_PX} x {SMALL_PX} px at the {imgsz} px input."
    )
    if n_images < FEW_IMAGES:
        text += (
            f" Fewer than {FEW_IMAGES:,} training images: expect lower recall on images unlike "
            "them (other sensors, lighting, scales)."
        )
    return text


WEIGHTS_ONLY_CARD = (
    "- INT8 weights only (every Conv's, symmetric per output channel), activations in float: "
    "the file is about 4x smaller than FP32; OpenVINO folds the weights back at load and "
    "computes in its float precision (bf16 where the CPU has it), so no calibration and no "
    "activation ranges are involved. onnxruntime runs the file too, but dequantizes the "
    "weights at every run (slower than the FP32 file).\n"
)


def model_card(meta: dict[str, Any], sel: Selection, chosen: VariantScore, data_facts: str) -> str:
    """MODEL_CARD.md: intended use, data, metrics of every variant, latency, INT8 limits."""
    q = meta["model"]["quantization"]
    src = meta["source"]
    m = meta["metrics"]
    verdict = m.get("verdict") or f"mAP50-95 {m['map50_95']:.4f} on val (no held-out split)."
    kept = KEPT_FP32.get(q.get("exclude"), "n/a") if q else "n/a"
    int8 = (
        f"- INT8 ({q.get('name', 'static QDQ') if q else 'static'}): {_int8_tool(q or {})}, "
        f"calibrated on train-split images only; kept in FP32: {kept}. Measured "
        f"change on val: {chosen.map50_95 - sel.base_map50_95:+.4f} mAP50-95 vs the FP32 .pt.\n"
        "- INT8 accuracy holds for images like the calibration set; very different lighting, "
        "sensors or scales can shift activations outside the calibrated ranges. Recalibrate on "
        "target-domain images before trusting it there.\n"
        f"- Integer types: {int8_limits(q or {})}\n"
        if chosen.precision == "int8"
        else WEIGHTS_ONLY_CARD
        if chosen.precision == "w8"
        else "- FP32 model: no quantization limits apply.\n"
    )
    return f"""# Model card: {meta["name"]} {meta["version"]}

## Intended use
Object detection of {len(meta["classes"])} classes ({", ".join(meta["classes"].values())}) in
images like the training data, on CPUs and edge devices through onnxruntime (or OpenVINO).
Input: one RGB image, letterboxed to {meta["input"]["shape"][-1]} px. Not for safety-critical
decisions without validation on the deployment's own data.

## Data
`{src["data_name"]}`, DVC hash `{src["data_dvc_hash"]}` ({src["data_tracked_by"]}). The val
split chose the variant; the reported metrics are on the {m["split"]} split. Built from git
`{src["git_commit"]}`, ZenML run `{src.get("zenml_run_id")}`, MLflow run
`{src.get("mlflow_run_id")}`.

## Accuracy
{verdict}

## Variants (this bundle holds **{chosen.name}**)
{markdown_table(sel)}

{table_notes(sel)} `benchmark.json` has this bundle's own run with device details; run
`python -m edge.benchmark .` on the target for its numbers.

## Runtime
{_runtime(meta)}

## Outputs
{_outputs(meta)}

## Thresholds
conf {meta["thresholds"]["conf"]}, IoU {meta["thresholds"]["iou"]}, at most
{meta["thresholds"]["max_det"]} detections; {meta["thresholds"]["nms"]}.

## Limits
{int8}{data_facts}
- Golden cases in `golden/` fix the expected outputs; ports must match within
  `golden/golden.json` tolerances.
"""


def check_portable(model: Path) -> None:
    """Refuse, on every CPU, an INT8 model whose weight pairs can saturate onnxruntime's int16
    sums on x86 CPUs without VNNI: the build's own fused-vs-unfused comparison only sees that
    on such a CPU, and a bundle built on a VNNI machine would then fail there."""
    import onnx

    from yeo.optimize.portability import pair_overflows

    if overflows := pair_overflows(onnx.load(str(model))):
        raise UserError(
            f"{Path(model).name}: its outputs would depend on the CPU ({overflows[0]}; "
            f"{len(overflows)} tensor(s)): quantize with a portable recipe (pairsafe or 7bit) "
            "so the bundle verifies on every CPU"
        )


def build(
    sel: Selection,
    model: Path | None,
    data: DataVersion,
    dataset: Path,
    parent: Path,
    name: str,
    thresholds: dict[str, float],
    lineage: dict[str, str],
    n_golden: int,
    benchmark_runs: int,
    threads: int,
    arm64: str = "off",
) -> BundleInfo:
    """Build ``parent/<name>-vN`` (+ .tar.gz) from the selected variant (its local file:
    ``model``, None when nothing was selected; golden images from ``dataset``, the processed
    folder), then verify it. ``arm64``: the emulated Arm64 check (:func:`yeo.arm64.observer`)."""
    from yeo.arm64 import observer
    from yeo.optimize.dataset import busiest_images

    by = {v.name: v for v in sel.variants}
    if sel.selected is None or by[sel.selected].format != "onnx" or model is None:
        raise UserError(f"no ONNX variant selected to bundle ({sel.reason})")
    chosen = by[sel.selected]
    if chosen.precision == "int8":
        check_portable(Path(model))
    version = next_version(parent, name)
    meta = metadata(name, version, chosen, model, data, thresholds, lineage, sel.held_out)
    images = busiest_images(Path(dataset), "val", n_golden)
    try:
        dest, archive = edge_bundle.build(
            Path(model),
            parent / f"{name}-{version}",
            meta,
            images,
            card=lambda full: model_card(
                full, sel, chosen, training_data_facts(Path(dataset), full["input"]["shape"][-1])
            ),
            benchmark_runs=benchmark_runs,
            threads=threads,
            observers=observer(arm64),
        )
    except edge_bundle.PortabilityError as e:
        raise UserError(str(e)) from None
    faults, summary = verify(dest)
    if faults:
        raise UserError(f"{dest}: the new bundle fails edge.verify: {faults[0]}")

    bench = bundle_format.read_json(dest / "benchmark.json")
    arm = bundle_format.read_json(dest / "golden" / "golden.json")["observed"].get("arm64_emulated")
    if isinstance(arm, dict):
        arm = (
            f"{arm['cpu']}, onnxruntime {arm['onnxruntime']}: box {arm['box_px']:.3f} px, "
            f"score {arm['score']:.5f} off the golden outputs"
        )
    return BundleInfo(
        name=name,
        version=version,
        path=workspace().relative(dest),
        archive=workspace().relative(archive),
        variant=chosen.name,
        verify=summary,
        benchmark_p50_ms=bench["model_ms"]["p50_ms"],
        end_to_end_p50_ms=bench["end_to_end_ms"]["p50_ms"],
        arm64=arm,
    )
