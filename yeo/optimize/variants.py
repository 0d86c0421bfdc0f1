"""Model variants, their scores, the selection rule, and the variants table.

Every variant is scored by the same evaluator (:mod:`yeo.evaluation`) on the same val split,
on the backend that would run it (onnxruntime, or OpenVINO for the ``_ov`` twins), and all ONNX
variants are timed together, interleaved, each on its backend, by one harness
(:mod:`edge.latency`). The selected variant is the fastest ONNX model whose val mAP50-95 is
within ``max_map_drop`` (absolute) of the base model. The numbers that are reported come
from the held-out test split, scored once after the choice (:mod:`yeo.optimize.heldout`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.latency import detect_runner, interleaved
from yeo.io import atomic_write_text, write_json


class HeldOutScore(BaseModel):
    """One variant on the held-out split, with 95% bootstrap intervals over images."""

    map50: float
    map50_95: float
    ci95: tuple[float, float]
    drop: float  # base minus this variant, on the same images (positive: worse)
    drop_ci95: tuple[float, float]  # paired: the same resamples for both models
    per_class_ap50_95: dict[str, float]


class HeldOut(BaseModel):
    """What the held-out scoring ran on, and the budget verdict it gives."""

    split: str  # "test"; "val" only when the dataset has no test split
    independent: bool  # False when the reported split is the one that chose
    n_images: int
    n_instances: int
    resamples: int
    verdict: str
    within_budget: bool | None  # of the selected variant, by its point estimate
    inside_noise: bool | None  # the drop's interval straddles the budget
    # the smallest budget this split confirms for the selected variant: the upper end of its
    # paired drop interval (never below 0); None without a selection
    confirms_budget: float | None = None
    # what base_ft (the base fine-tuned on the pruned copy's schedule) says about extra training
    control: str | None = None
    # why the base is under the floor (the budget verdict then means nothing); None: it is not
    floor: str | None = None

    @property
    def vacuous(self) -> bool:
        return self.floor is not None

    @property
    def breached(self) -> bool:
        """The held-out split confirms the selected variant is over the budget: its point
        estimate and its whole paired interval (a verdict that means something: not vacuous)."""
        return not self.vacuous and self.within_budget is False and self.inside_noise is False


class VariantScore(BaseModel):
    name: str  # base_pt, base_fp32, base_int8, pruned_fp32, pruned_int8 (+ _<px>: size axis)
    file: str  # the model's file name: in the artifact, and in the run's variants/ folder
    artifact: str | None = None  # the ZenML artifact version (a folder) that holds the file
    format: str  # pt | onnx
    precision: str  # fp32 | int8 | w8 (int8 weights only, float activations)
    pruned: bool
    head: str = "graph"  # graph: decodes in the model; raw: cut at the head, decoded on the host
    # what runs it (and scored, timed and would run it in the bundle): torch for a .pt,
    # onnxruntime or openvino (the ``_ov`` twin of an ONNX variant: the same file)
    backend: str = "onnxruntime"
    runs: str | None = None  # what the backend computed in (OpenVINO: bf16 where the CPU has it)
    imgsz: int | None = None  # the square input it was judged, timed and would be bundled at
    map50: float
    map50_95: float
    precision_: float
    recall: float
    per_class_ap50_95: dict[str, float]
    p50_ms: float | None = None  # all ONNX variants timed interleaved, in one step
    p90_ms: float | None = None
    p99_ms: float | None = None
    p25_ms: float | None = None
    p75_ms: float | None = None
    size_bytes: int
    params: int | None = None
    macs: int | None = None
    recipe: dict[str, Any] | None = None
    held_out: HeldOutScore | None = None


class Selection(BaseModel):
    selected: str | None
    base_map50_95: float  # val: what chose
    max_map_drop: float
    reason: str
    variants: list[VariantScore]
    min_base_map: float = 0.0  # the floor under the budget (see heldout.floor)
    timing: dict[str, Any] | None = None  # how the interleaved timing ran
    # the backends tried (name -> version and what it ran in), or why one was not
    backends: dict[str, str] = {}
    held_out: HeldOut | None = None


def time_interleaved(
    variants: list[VariantScore],
    models: dict[str, Path],
    image: Path,
    threads: int,
    warmup: int,
    rounds: int,
    runs: int,
    conf: float,
    image_label: str | None = None,
) -> dict[str, Any]:
    """Time every ONNX variant end to end (:func:`edge.latency.detect_runner`: model + decode
    + NMS on ``image``, host decode for a raw head; ``models``: each one's local file) in one
    process, in alternating rounds (drift on a busy machine hits all alike), and record p50 and
    its spread on each; how it ran. ``image_label``: what the record calls ``image`` (default:
    its file name; a step gives its path inside the dataset, not on this host)."""
    onnx = [v for v in variants if v.format == "onnx"]
    runners = {
        v.name: detect_runner(models[v.name], threads, image=image, conf=conf, backend=v.backend)
        for v in onnx
    }
    lat = interleaved(runners, rounds=rounds, runs=runs, warmup=warmup, threads=threads)
    for v in onnx:
        t = lat[v.name]
        v.p50_ms, v.p90_ms, v.p99_ms = t.p50_ms, t.p90_ms, t.p99_ms
        v.p25_ms, v.p75_ms = t.p25_ms, t.p75_ms
    return {
        "runtime": ", ".join(dict.fromkeys(v.backend for v in onnx)),
        "threads": threads,
        "warmup": warmup,
        "rounds": rounds,
        "runs_per_round": runs,
        "interleaved": True,
        "end_to_end": f"model + decode + NMS at conf {conf}, on {image.name}",
        "image": image_label or image.name,
        "conf": conf,
    }


def qualifies(v: VariantScore, base_map: float, max_drop: float) -> bool:
    return base_map - v.map50_95 <= max_drop + 1e-9


def tied(v: VariantScore, fastest: VariantScore) -> bool:
    """Whether the timing cannot split ``v`` from ``fastest``: each one's p50 inside the
    other's p25-p75 spread (only equal p50s tie where no spread was measured)."""

    def spread(x: VariantScore) -> tuple[float, float]:
        p50 = x.p50_ms or 0.0
        return (
            x.p25_ms if x.p25_ms is not None else p50,
            x.p75_ms if x.p75_ms is not None else p50,
        )

    (lo, _), (_, hi) = spread(v), spread(fastest)
    return v.p50_ms is not None and v.p50_ms <= hi and lo <= (fastest.p50_ms or 0.0)


def select(
    variants: list[VariantScore], base: str, max_drop: float, min_base_map: float = 0.0
) -> Selection:
    """The fastest ONNX variant within ``max_drop`` mAP50-95 of ``base`` (None if none is):
    of those :func:`tied` with the fastest (a model and its int8-weights twin on OpenVINO, for
    one), the smallest file.
    ``min_base_map`` is carried for the held-out verdict's floor."""
    by_name = {v.name: v for v in variants}
    base_map = by_name[base].map50_95
    timed = [v for v in variants if v.p50_ms is not None]
    ok = [v for v in timed if qualifies(v, base_map, max_drop)]
    if not ok:
        best = max(timed, key=lambda v: v.map50_95, default=None)
        gap = f"; closest: {best.name} at {base_map - best.map50_95:+.4f}" if best else ""
        reason = f"no ONNX variant within {max_drop} mAP50-95 of {base} ({base_map:.4f}){gap}"
        return Selection(
            selected=None,
            base_map50_95=base_map,
            max_map_drop=max_drop,
            min_base_map=min_base_map,
            reason=reason,
            variants=variants,
        )
    fastest = min(ok, key=lambda v: v.p50_ms)
    pick = min((v for v in ok if tied(v, fastest)), key=lambda v: (v.size_bytes, v.p50_ms))
    smallest = (
        f"; the smallest file of those tied with {fastest.name} at {fastest.p50_ms:.2f} ms "
        "(each p50 inside the other's p25-p75)"
        if pick is not fastest
        else ""
    )
    reason = (
        f"fastest of {len(ok)} variants within {max_drop} of {base} "
        f"(mAP50-95 {pick.map50_95:.4f} vs {base_map:.4f}, p50 {pick.p50_ms:.2f} ms{smallest})"
    )
    return Selection(
        selected=pick.name,
        base_map50_95=base_map,
        max_map_drop=max_drop,
        min_base_map=min_base_map,
        reason=reason,
        variants=variants,
    )


def pareto(variants: list[VariantScore]) -> list[VariantScore]:
    """The timed variants no other is both faster than and at least as accurate as (held-out
    mAP50-95 where scored, else val), fastest first: the latency/accuracy front."""

    def acc(v: VariantScore) -> float:
        return v.held_out.map50_95 if v.held_out else v.map50_95

    front: list[VariantScore] = []
    for v in sorted((v for v in variants if v.p50_ms is not None), key=lambda v: v.p50_ms):
        if not front or acc(v) > acc(front[-1]):
            front.append(v)
    return front


def _backend(v: VariantScore) -> str:
    if v.format != "onnx":
        return "torch"
    return f"{v.backend} ({v.runs})" if v.runs else v.backend


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _spread(v: VariantScore) -> str:
    if v.p50_ms is None:
        return "-"
    if v.p25_ms is None or v.p75_ms is None:
        return _ms(v.p50_ms)
    return f"{v.p50_ms:.2f} ({v.p25_ms:.2f}-{v.p75_ms:.2f})"


def _held_out_cells(v: VariantScore, split: str) -> dict[str, str]:
    h = v.held_out
    if h is None:
        return {f"{split} mAP50-95 [95% CI]": "-", f"Δ {split} [95% CI]": "-"}
    lo, hi = h.drop_ci95
    return {
        f"{split} mAP50-95 [95% CI]": f"{h.map50_95:.4f} [{h.ci95[0]:.3f}, {h.ci95[1]:.3f}]",
        f"Δ {split} [95% CI]": f"{-h.drop:+.4f} [{-hi:+.3f}, {-lo:+.3f}]",
    }


def table_cells(sel: Selection) -> list[dict[str, str]]:
    """One formatted row per variant (column name -> text, in display order), for every
    rendering of the table. val columns chose; held-out columns report; speed-up is against
    base_fp32 from the same interleaved timing."""
    ref = next((v.p50_ms for v in sel.variants if v.name == "base_fp32"), None)
    split = sel.held_out.split if sel.held_out else "test"
    front = {v.name for v in pareto(sel.variants)}
    return [
        {
            "variant": v.name,
            "head": v.head if v.format == "onnx" else "-",
            "backend": _backend(v),
            "px": str(v.imgsz or "-"),
            "val mAP50-95": f"{v.map50_95:.4f}",
            "Δ val": f"{v.map50_95 - sel.base_map50_95:+.4f}",
            **_held_out_cells(v, split),
            "p50 ms (p25-p75)": _spread(v),
            "p90 ms": _ms(v.p90_ms),
            "speed-up": f"{ref / v.p50_ms:.2f}x" if ref and v.p50_ms else "-",
            "size MB": f"{v.size_bytes / 1e6:.2f}",
            "params": f"{v.params / 1e6:.2f}M" if v.params else "-",
            "GMACs": f"{v.macs / 1e9:.3f}" if v.macs else "-",
            "front": "yes" if v.name in front else "",
        }
        for v in sel.variants
    ]


def markdown_table(sel: Selection) -> str:
    """The variants table in Markdown (all columns but p90), the selected row marked."""
    cells = table_cells(sel)
    columns = [c for c in cells[0] if c != "p90 ms"]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in cells:
        if row["variant"] == sel.selected:
            row["variant"] += " **(selected)**"
        rows.append("| " + " | ".join(row[c] for c in columns) + " |")
    return "\n".join(rows)


def table_notes(sel: Selection) -> str:
    """What the table's numbers are, in one paragraph under every rendering of it."""
    t = sel.timing or {}
    timing = (
        f"Latency: {t.get('runtime', 'onnxruntime')}, batch 1, CPU, {t.get('threads')} threads; "
        "every ONNX variant on its backend (the _ov twins: the same file on OpenVINO, in the "
        f"precision the CPU gives it), timed in one process, {t.get('rounds')} interleaved "
        f"rounds of {t.get('runs_per_round')} runs, end to end "
        f"({t.get('end_to_end', 'model only')}; head raw: cut at the Detect head's convs, "
        "decoded on the host, candidates only); p50 with its p25-p75 spread; "
        "speed-up vs base_fp32 (in-graph decode) from the same rounds."
        if t
        else "Latency: onnxruntime, batch 1, CPU; speed-up vs base_fp32."
    )
    h = sel.held_out
    if h is None:
        acc = "mAP on the val split, which also chose (no held-out scoring ran)."
    else:
        acc = (
            f"val mAP chose the checkpoint, the INT8 recipe and the variant; {h.split} mAP "
            f"({h.n_images} images, {h.n_instances} boxes) "
            + (
                "chose nothing and is scored once, after the choice"
                if h.independent
                else "is the same split (the dataset has no test split): not independent"
            )
            + f". Intervals: 95% bootstrap over images ({h.resamples} resamples); Δ is paired "
            "(the same resamples for the variant and base_pt)."
        )
    control = f" {h.control}." if h is not None and h.control else ""
    front = (
        " front: on the latency/accuracy Pareto front (no other variant is both faster and "
        f"at least as accurate on {h.split if h else 'val'})."
    )
    tried = (
        " Backends: " + "; ".join(f"{k} {v}" for k, v in sel.backends.items()) + "."
        if sel.backends
        else ""
    )
    w8 = (
        " _w8: int8 Conv weights, float activations (a file about 4x smaller; OpenVINO folds the "
        "weights in at load and computes as for FP32), on OpenVINO only."
        if any(v.precision == "w8" for v in sel.variants)
        else ""
    )
    nncf = (
        " _nncf: NNCF's INT8 of the FP32 file, for OpenVINO's CPU plugin, calibrated on the "
        "same train images as the _int8 files; on OpenVINO only."
        if any((v.recipe or {}).get("backend") == "nncf" for v in sel.variants)
        else ""
    )
    return f"{timing} {acc}{control}{front}{w8}{nncf}{tried}"


def write_tables(sel: Selection, folder: Path) -> tuple[Path, Path]:
    """``variants.json`` and ``variants.md`` in ``folder``."""
    js = write_json(folder / "variants.json", sel.model_dump())
    md = atomic_write_text(
        folder / "variants.md",
        f"# Optimization variants\n\nSelected: **{sel.selected or 'none'}**: {sel.reason}\n\n"
        f"{markdown_table(sel)}\n\n{table_notes(sel)}\n",
    )
    return js, md
