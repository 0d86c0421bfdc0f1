"""The report's plots as PNG files: accuracy vs latency, size and MACs, per-class AP."""

from __future__ import annotations

from pathlib import Path

from yeo.optimize.variants import Selection, VariantScore

COLORS = {"fp32": "#4C72B0", "int8": "#DD8452"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on CI or remote stacks
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def accuracy_vs_latency(sel: Selection, path: Path) -> Path:
    """mAP50-95 against p50 latency per ONNX variant; budget line and selected point marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    timed = [v for v in sel.variants if v.p50_ms is not None]
    floor = sel.base_map50_95 - sel.max_map_drop
    lo = min([floor, *(v.map50_95 for v in timed)]) - 0.02
    ax.axhspan(lo, floor, color="#C44E52", alpha=0.08, label="outside the accuracy budget")
    ax.axhline(
        floor,
        color="#C44E52",
        ls="--",
        lw=1,
        label=f"budget: base .pt {sel.base_map50_95:.3f} − {sel.max_map_drop}",
    )
    for v in timed:
        ax.scatter(v.p50_ms, v.map50_95, s=60, color=COLORS[v.precision], zorder=3)
        ax.annotate(
            v.name, (v.p50_ms, v.map50_95), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    chosen = next((v for v in timed if v.name == sel.selected), None)
    if chosen:
        ax.scatter(
            chosen.p50_ms,
            chosen.map50_95,
            s=260,
            facecolors="none",
            edgecolors="black",
            lw=1.5,
            zorder=4,
            label=f"selected: {chosen.name}",
        )
    for precision, color in COLORS.items():
        ax.scatter([], [], color=color, label=precision.upper())
    ax.set_ylim(bottom=lo)
    ax.set_xlabel("p50 latency, ms (onnxruntime, batch 1, CPU)")
    ax.set_ylabel("mAP50-95 (val)")
    ax.set_title("Accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(plt, fig, path)


def size_and_macs(sel: Selection, path: Path) -> Path:
    """File size and GMACs per variant, side by side."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.6), dpi=110)
    names = [v.name for v in sel.variants]
    colors = [COLORS[v.precision] for v in sel.variants]
    ax1.bar(names, [v.size_bytes / 1e6 for v in sel.variants], color=colors)
    ax1.set_ylabel("file size, MB")
    ax1.set_title("Size")
    macs = [(v.macs or 0) / 1e9 for v in sel.variants]
    ax2.bar(names, macs, color=colors)
    ax2.set_ylabel("GMACs per image")
    ax2.set_title("Compute (INT8 keeps the MACs)")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    return _save(plt, fig, path)


def per_class_ap(base: VariantScore, chosen: VariantScore, path: Path) -> Path:
    """Per-class mAP50-95 of the base model and the selected variant."""
    import numpy as np

    classes = sorted(set(base.per_class_ap50_95) | set(chosen.per_class_ap50_95))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(classes) + 2), 3.8), dpi=110)
    x = np.arange(len(classes))
    ax.bar(
        x - 0.2,
        [base.per_class_ap50_95.get(c, 0) for c in classes],
        0.4,
        label=base.name,
        color=COLORS["fp32"],
    )
    ax.bar(
        x + 0.2,
        [chosen.per_class_ap50_95.get(c, 0) for c in classes],
        0.4,
        label=chosen.name,
        color=COLORS[chosen.precision],
    )
    ax.set_xticks(x, classes, rotation=30, fontsize=8)
    ax.set_ylabel("mAP50-95")
    ax.set_title(f"Per-class AP: {base.name} vs {chosen.name}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)
