"""What saturation-free INT8 costs: weight ranges side by side on one optimize run's models.

    python benchmarks/int8_portability.py [--run outputs/optimize/<run>] [--rounds 5] [--runs 30]

For the run's base and pruned models (exported again from the run's weights with its export
settings, as ``--pipeline benchmark`` rebuilds variants), quantizes with the default recipe's
settings and each weight range (``pairsafe``: the default, ``7bit``: onnxruntime's reduce_range,
``full``: 8-bit, CPU-dependent), then reports per model: mAP50-95 on the run's val split
(the same evaluator), p50 latency (onnxruntime, 2 threads, interleaved rounds, with p25-p75),
and the largest box / score difference between onnxruntime's fused int8 kernels and the
same graph run unfused (what a CPU without int16 saturation computes); where the run cut
its variants at the head (``optimize.head=raw``, the default), every file is cut the same way
before it is scored, timed and compared. Prints the CPU and
its flags; compare only ratios measured in one run. Writes ``int8_portability.{json,md}``
under ``outputs/benchmarks/<run>/``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

env.configure()

from benchmarks.common import cpu_line, open_run, parser, publish  # noqa: E402
from edge.compare import fused_vs_unfused  # noqa: E402
from edge.device import describe  # noqa: E402
from edge.latency import interleaved, ort_runner  # noqa: E402
from yeo.evaluation import EvalSettings, evaluate  # noqa: E402
from yeo.optimize.dataset import split_images  # noqa: E402
from yeo.optimize.export import cut_head, export_variant, image_batch  # noqa: E402
from yeo.optimize.portability import pair_overflows  # noqa: E402
from yeo.optimize.quantize import calibration_images, quantize  # noqa: E402
from yeo.optimize.recipes import DEFAULT_RECIPES, WEIGHT_RANGES  # noqa: E402
from yeo.optimize.settings import OptimizeConfig  # noqa: E402


def as_run(path: Path, raw: bool) -> Path:
    """``path`` as the run's variants are: cut at the head (beside it) where the run's were."""
    if not raw:
        return path
    cut = path.with_name(f"{path.stem}_raw.onnx")
    cut_head(path, cut)
    return cut


def main() -> int:
    import onnx

    ap = parser(__doc__)
    ap.add_argument("--conf", type=float, default=0.25, help="anchors compared: score >= this")
    args = ap.parse_args()
    opened = open_run(args.run)
    run, processed = opened.path, opened.dataset()
    data_yaml = processed / "data.yaml"
    out = opened.out()
    calib = calibration_images(split_images(processed, "train"), 64, seed=0)
    probe = sorted(split_images(processed, "val"))[:16]
    rows: dict[str, dict] = {}
    models: dict[str, Path] = {}
    rows_by = {v["name"]: v for v in opened.report["variants"]}
    optimize = OptimizeConfig.parse("optimize", opened.report["config"]["optimize"])
    base_pt = run / "variants" / rows_by.get("base_pt", {}).get("file", "base_pt.pt")
    weights_of = {"base": base_pt, "pruned": run / "prune" / "model" / "best.pt"}
    raw = optimize.head == "raw"
    for prefix in ("base", "pruned"):
        row = rows_by.get(f"{prefix}_fp32")
        if row is None or not weights_of[prefix].is_file():
            continue
        imgsz = row["imgsz"]
        fp32 = out / "int8" / f"{prefix}_fp32.onnx"
        export_variant(weights_of[prefix], fp32, imgsz, optimize, processed)
        models[f"{prefix}_fp32"] = as_run(fp32, raw)
        for weights in WEIGHT_RANGES:
            recipe = replace(DEFAULT_RECIPES[0], name=f"{prefix}-{weights}", weights=weights)
            q = quantize(fp32, out / "int8" / f"{prefix}_{weights}.onnx", recipe, calib, imgsz)
            path = as_run(q, raw)
            models[f"{prefix}_int8_{weights}"] = path
            rows[f"{prefix}_int8_{weights}"] = {
                "pair_overflows": len(pair_overflows(onnx.load(str(path)))),
                "kernel_vs_exact_box_score": list(
                    fused_vs_unfused(path, image_batch(probe, imgsz), args.conf, threads=2)
                ),
            }
        for name in [n for n in models if n.startswith(prefix)]:
            score = evaluate(models[name], data_yaml, EvalSettings(imgsz=imgsz)).map50_95
            rows.setdefault(name, {})["map50_95"] = score
            rows[name]["size_mb"] = models[name].stat().st_size / 1e6
    lat = interleaved({n: ort_runner(p, 2) for n, p in models.items()}, args.rounds, args.runs)
    for name, latency in lat.items():
        rows[name] |= {"p50_ms": latency.p50_ms, "p25_ms": latency.p25_ms, "p75_ms": latency.p75_ms}
    dev = describe()
    lines = [
        cpu_line(dev),
        "",
        "| model | mAP50-95 (val) | p50 ms (p25-p75) | size MB | pair overflows | "
        f"kernel vs exact, anchors >= {args.conf}: box px / score |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        ke = r.get("kernel_vs_exact_box_score")
        lines.append(
            f"| {name} | {r['map50_95']:.4f} | {r['p50_ms']:.2f} ({r['p25_ms']:.2f}-"
            f"{r['p75_ms']:.2f}) | {r['size_mb']:.2f} | {r.get('pair_overflows', '-')} | "
            f"{f'{ke[0]:.2f} / {ke[1]:.3f}' if ke else '-'} |"
        )
    data = {"device": dev, "run": run.name, "rows": rows}
    publish(out, "int8_portability", data, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
