"""Model variants, their scores, the selection rule, and the variants table.

Every variant is scored by the same evaluator (:mod:`yeo.evaluation`) on the same val split,
and every ONNX variant is timed by the same onnxruntime harness (:mod:`edge.latency`). The
selected variant is the fastest ONNX model whose mAP50-95 is within ``max_map_drop``
(absolute) of the base model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from yeo.io import atomic_write_text, write_json


class VariantScore(BaseModel):
    name: str  # base_pt, base_fp32, base_int8, pruned_fp32, pruned_int8
    path: str
    format: str  # pt | onnx
    precision: str  # fp32 | int8
    pruned: bool
    map50: float
    map50_95: float
    precision_: float
    recall: float
    per_class_ap50_95: dict[str, float]
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    size_bytes: int
    params: int | None = None
    macs: int | None = None
    recipe: dict[str, Any] | None = None


class Selection(BaseModel):
    selected: str | None
    base_map50_95: float
    max_map_drop: float
    reason: str
    variants: list[VariantScore]


def qualifies(v: VariantScore, base_map: float, max_drop: float) -> bool:
    return base_map - v.map50_95 <= max_drop + 1e-9


def select(variants: list[VariantScore], base: str, max_drop: float) -> Selection:
    """The fastest ONNX variant within ``max_drop`` mAP50-95 of ``base`` (None if none is)."""
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
            reason=reason,
            variants=variants,
        )
    pick = min(ok, key=lambda v: v.p50_ms)
    reason = (
        f"fastest of {len(ok)} variants within {max_drop} of {base} "
        f"(mAP50-95 {pick.map50_95:.4f} vs {base_map:.4f}, p50 {pick.p50_ms:.2f} ms)"
    )
    return Selection(
        selected=pick.name,
        base_map50_95=base_map,
        max_map_drop=max_drop,
        reason=reason,
        variants=variants,
    )


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def table_cells(sel: Selection) -> list[dict[str, str]]:
    """One formatted row per variant (column name -> text), for every rendering of the table;
    speed-up is against base_fp32."""
    ref = next((v.p50_ms for v in sel.variants if v.name == "base_fp32"), None)
    return [
        {
            "variant": v.name,
            "mAP50-95": f"{v.map50_95:.4f}",
            "mAP50": f"{v.map50:.4f}",
            "Δ mAP50-95": f"{v.map50_95 - sel.base_map50_95:+.4f}",
            "p50 ms": _ms(v.p50_ms),
            "p90 ms": _ms(v.p90_ms),
            "speed-up": f"{ref / v.p50_ms:.2f}x" if ref and v.p50_ms else "-",
            "size MB": f"{v.size_bytes / 1e6:.2f}",
            "params": f"{v.params / 1e6:.2f}M" if v.params else "-",
            "GMACs": f"{v.macs / 1e9:.3f}" if v.macs else "-",
        }
        for v in sel.variants
    ]


MARKDOWN_COLUMNS = (
    "variant",
    "mAP50-95",
    "mAP50",
    "Δ mAP50-95",
    "p50 ms",
    "speed-up",
    "size MB",
    "params",
    "GMACs",
)


def markdown_table(sel: Selection) -> str:
    rows = ["| " + " | ".join(MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
    for cells in table_cells(sel):
        if cells["variant"] == sel.selected:
            cells["variant"] += " **(selected)**"
        rows.append("| " + " | ".join(cells[c] for c in MARKDOWN_COLUMNS) + " |")
    return "\n".join(rows)


def write_tables(sel: Selection, folder: Path) -> tuple[Path, Path]:
    """``variants.json`` and ``variants.md`` in ``folder``."""
    js = write_json(folder / "variants.json", sel.model_dump())
    md = atomic_write_text(
        folder / "variants.md",
        f"# Optimization variants\n\nSelected: **{sel.selected or 'none'}**: {sel.reason}\n\n"
        f"{markdown_table(sel)}\n\nLatency: onnxruntime, batch 1, CPU; speed-up vs base_fp32.\n",
    )
    return js, md
