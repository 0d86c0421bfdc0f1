"""The report's plots as PNG files: accuracy vs latency, size and MACs, per-class AP."""

from __future__ import annotations

from pathlib import Path

from yeo.optimize.variants import Selection, VariantScore, pareto

COLORS = {"fp32": "#4C72B0", "int8": "#DD8452", "w8": "#55A868"}
LABELS = {"fp32": "FP32", "int8": "INT8", "w8": "INT8 weights, float activations"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on CI or remote stacks
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def _reported(v: VariantScore) -> tuple[float, tuple[float, float] | None]:
    """The mAP a plot shows: held-out with its interval when scored, else val."""
    if v.held_out:
        return v.held_out.map50_95, v.held_out.ci95
    return v.map50_95, None


def accuracy_vs_latency(sel: Selection, path: Path) -> Path:
    """Held-out mAP50-95 (95% interval) against p50 latency (p25-p75) per ONNX variant, the
    val score that chose as a hollow marker; budget line and selected point marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4), dpi=110)
    timed = [v for v in sel.variants if v.p50_ms is not None]
    base = next((v for v in sel.variants if v.name == "base_pt"), None)
    base_map = _reported(base)[0] if base else sel.base_map50_95
    split = sel.held_out.split if sel.held_out else "val"
    floor = base_map - sel.max_map_drop
    lows = [(_reported(v)[1] or (_reported(v)[0],) * 2)[0] for v in timed]
    lo = min([floor, *lows, *(v.map50_95 for v in timed)]) - 0.02
    ax.axhspan(lo, floor, color="#C44E52", alpha=0.08, label="outside the accuracy budget")
    ax.axhline(
        floor,
        color="#C44E52",
        ls="--",
        lw=1,
        label=f"budget: base .pt {split} {base_map:.3f} − {sel.max_map_drop}",
    )
    for v in timed:
        y, ci = _reported(v)
        yerr = [[y - ci[0]], [ci[1] - y]] if ci else None
        xerr = (
            [[v.p50_ms - v.p25_ms], [v.p75_ms - v.p50_ms]]
            if v.p25_ms is not None and v.p75_ms is not None
            else None
        )
        ax.errorbar(
            v.p50_ms,
            y,
            yerr=yerr,
            xerr=xerr,
            fmt="o",
            ms=7,
            color=COLORS[v.precision],
            ecolor=COLORS[v.precision],
            elinewidth=1,
            capsize=3,
            zorder=3,
        )
        if v.held_out:
            ax.scatter(v.p50_ms, v.map50_95, s=30, facecolors="none", edgecolors="grey", zorder=3)
        ax.annotate(v.name, (v.p50_ms, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    front = pareto(sel.variants)
    if len(front) > 1:
        xs = [v.p50_ms for v in front]
        ys = [_reported(v)[0] for v in front]
        ax.step(xs, ys, where="post", color="grey", lw=1, ls=":", label="Pareto front")
    chosen = next((v for v in timed if v.name == sel.selected), None)
    if chosen:
        ax.scatter(
            chosen.p50_ms,
            _reported(chosen)[0],
            s=260,
            facecolors="none",
            edgecolors="black",
            lw=1.5,
            zorder=4,
            label=f"selected (on val): {chosen.name}",
        )
    for precision in dict.fromkeys(v.precision for v in sel.variants):
        ax.scatter(
            [], [], color=COLORS[precision], label=f"{LABELS[precision]} ({split}, 95% interval)"
        )
    if sel.held_out:
        ax.scatter([], [], s=30, facecolors="none", edgecolors="grey", label="val (chose)")
    ax.set_ylim(bottom=lo)
    ax.set_xlabel("p50 latency, ms, p25-p75 bars (onnxruntime, batch 1, CPU, interleaved)")
    ax.set_ylabel(f"mAP50-95 ({split})")
    ax.set_title("Accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(plt, fig, path)


def size_and_macs(sel: Selection, path: Path) -> Path:
    """File size and GMACs per variant, side by side."""
    plt = pyplot()
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
    return save_figure(plt, fig, path)


def per_class_ap(base: VariantScore, chosen: VariantScore, path: Path) -> Path:
    """Per-class mAP50-95 of the base model and the selected variant (held-out when scored)."""
    import numpy as np

    def per_class(v: VariantScore) -> dict[str, float]:
        return v.held_out.per_class_ap50_95 if v.held_out else v.per_class_ap50_95

    split = "held-out" if base.held_out else "val"
    a, b = per_class(base), per_class(chosen)
    classes = sorted(set(a) | set(b))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(classes) + 2), 3.8), dpi=110)
    x = np.arange(len(classes))
    ax.bar(
        x - 0.2,
        [a.get(c, 0) for c in classes],
        0.4,
        label=base.name,
        color=COLORS["fp32"],
    )
    ax.bar(
        x + 0.2,
        [b.get(c, 0) for c in classes],
        0.4,
        label=chosen.name,
        color=COLORS[chosen.precision],
    )
    ax.set_xticks(x, classes, rotation=30, fontsize=8)
    ax.set_ylabel(f"mAP50-95 ({split})")
    ax.set_title(f"Per-class AP: {base.name} vs {chosen.name}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(plt, fig, path)


def finetune_curves(steps: list[dict], base_map: float, budget: float, path: Path) -> Path:
    """Val mAP50-95 per fine-tune epoch of each prune step, against the base and the budget."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    start = 0
    for s in steps:
        curve = [c for c in s.get("curve") or [] if c is not None]
        xs = range(start + 1, start + len(curve) + 1)
        ax.plot(xs, curve, marker="o", ms=3, label=f"step {s['step']}: {s['params'] / 1e6:.2f}M")
        start += len(curve)
    ax.axhline(base_map, color="grey", lw=1, label=f"base .pt (val) {base_map:.3f}")
    ax.axhline(base_map - budget, color="#C44E52", ls="--", lw=1, label=f"budget −{budget}")
    ax.set_xlabel("fine-tune epoch (steps back to back)")
    ax.set_ylabel("mAP50-95 (val)")
    ax.set_title("Prune + fine-tune: recovery per step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(plt, fig, path)


def sensitivity(scan: list[dict], ratios: dict[str, float], path: Path) -> Path:
    """Val mAP50-95 drop of each block pruned alone (no fine-tune) at each scanned ratio, and
    the ratio the allocation gave it."""
    plt = pyplot()
    names = list(dict.fromkeys(p["block"] for p in scan))
    levels = sorted({p["ratio"] for p in scan})
    # a ratio that round_to leaves whole (a 16-channel stem at 75%) draws no bar: not free
    drop = {(p["block"], p["ratio"]): p["drop"] for p in scan if p["macs_saved"] > 0}
    fig, ax = plt.subplots(figsize=(max(6.4, 0.34 * len(names)), 3.8), dpi=110)
    width = 0.8 / len(levels)
    for j, r in enumerate(levels):
        xs = [i + (j - (len(levels) - 1) / 2) * width for i in range(len(names))]
        ax.bar(xs, [drop.get((n, r), 0.0) for n in names], width, label=f"pruned {r:.0%} alone")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n.split('.')[-1]}\n{ratios.get(n, 0.0):.0%}" for n in names], fontsize=7)
    ax.set_xlabel("block (model.N) and the ratio it was given; no bar: that ratio prunes nothing")
    ax.set_ylabel("val mAP50-95 drop, no fine-tune")
    ax.set_title("Pruning sensitivity per block")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(plt, fig, path)


def detections(
    columns: list[tuple[str, Path | None]],
    images: list[Path],
    labels: list[Path],
    names: list[str],
    conf: float,
    path: Path,
) -> Path:
    """Each image once per column: ground truth (model None), then each model's detections
    at the bundle's ``conf`` through the edge runtime."""
    from PIL import Image

    from edge.runtime import Detector
    from yeo.viz import draw_boxes, yolo_boxes

    detectors = {title: Detector(m, threads=1, conf=conf) for title, m in columns if m}
    plt = pyplot()
    fig, axes = plt.subplots(
        len(images),
        len(columns),
        figsize=(2.6 * len(columns), 2.6 * len(images)),
        dpi=110,
        squeeze=False,
    )
    for r, (image, label) in enumerate(zip(images, labels, strict=True)):
        with Image.open(image) as im:
            rgb = im.convert("RGB")
        for c, (title, _) in enumerate(columns):
            if title in detectors:
                dets = detectors[title](rgb)
                boxes = [(d.class_id, d.box, f"{d.class_name} {d.score:.2f}") for d in dets]
            else:
                boxes = yolo_boxes(image, label, names)
            ax = axes[r][c]
            ax.imshow(draw_boxes(rgb, boxes))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0:
                ax.set_ylabel(image.name, fontsize=7)
    return save_figure(plt, fig, path)
