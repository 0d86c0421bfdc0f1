"""Lever 1 of the speed issue, measured: the graph cut at the Detect head's output convs, with
the DFL softmax + box decode on the host for candidates only, against the in-graph decode.

    python benchmarks/head_cut.py [--run outputs/optimize/<run>] [--rounds 5] [--runs 30]

For every ONNX variant of an optimize run that decodes in the graph (all with
``optimize.head=graph``; base_fp32 only with the default ``raw``), and for the base model exported
at 640 px (FP32, and INT8 with the default portable recipe, calibrated at 640 on train
images), both forms are timed end to end from the input tensor (model + decode + NMS at the
bundle's conf 0.25: a raw-head row always includes its host decode), interleaved in one
process, 2 threads. Each pair is checked first: the same detections within 1 px on val
images. Writes ``head_cut.{json,md}`` beside the run's benchmark table; exits 1 when a pair
differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

env.configure()

from benchmarks.common import cpu_line, open_run, parser, publish  # noqa: E402
from edge.device import describe  # noqa: E402
from edge.engine import session  # noqa: E402
from edge.latency import interleaved  # noqa: E402
from edge.postprocess import decode, decode_raw_head  # noqa: E402
from yeo.optimize.dataset import split_images  # noqa: E402
from yeo.optimize.export import cut_head, export_onnx, image_batch, onnx_metadata  # noqa: E402
from yeo.optimize.quantize import calibration_images, quantize  # noqa: E402
from yeo.optimize.recipes import DEFAULT_RECIPES  # noqa: E402

CONF, IOU = 0.25, 0.7


def detector(model: Path, raw: dict | None, threads: int = 2):
    """``x -> (boxes, scores, classes)``: the model, then its decode + NMS at ``CONF``, on the
    host for a raw head (``raw``: what :func:`cut_head` returned), else from the graph's."""
    sess = session(model, threads)
    name = sess.get_inputs()[0].name
    if raw is None:
        return lambda x: decode(sess.run(None, {name: x})[0], CONF, IOU)
    return lambda x: decode_raw_head(sess.run(None, {name: x}), raw["strides"], CONF, IOU)


def same_detections(a, b) -> float | None:
    """Largest box difference (px) when both give the same detections, else None."""
    if len(a[0]) != len(b[0]) or not np.array_equal(a[2], b[2]):
        return None
    return float(np.abs(a[0] - b[0]).max()) if len(a[0]) else 0.0


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--big", type=int, default=640, help="second image size (0: skip)")
    args = ap.parse_args()
    opened = open_run(args.run)
    run, processed, out = opened.path, opened.dataset(), opened.out("head_cut")
    val = sorted(split_images(processed, "val"))[:8]
    models: dict[str, Path] = {  # the run's variants that decode in the graph, at its size
        p.stem: p
        for p in sorted((run / "variants").glob("*.onnx"))
        if "raw_head" not in onnx_metadata(p)[0]  # optimize.head=raw variants are already cut
    }
    if args.big:
        pt = run / "variants" / "base_pt.pt"
        big = export_onnx(pt, out / f"base_fp32_{args.big}.onnx", args.big).path
        models[f"base_fp32_{args.big}"] = big
        calib = calibration_images(split_images(processed, "train"), 64, seed=0)
        models[f"base_int8_{args.big}"] = quantize(
            big, out / f"base_int8_{args.big}.onnx", DEFAULT_RECIPES[0], calib, args.big
        )
    runners, rows, ok = {}, {}, True
    for name, path in models.items():
        imgsz = int(onnx_metadata(path)[0]["imgsz"][0])
        raw_path = out / f"{name}_raw.onnx"
        raw = cut_head(path, raw_path)
        in_graph, raw_head = detector(path, None), detector(raw_path, raw)
        diffs = [same_detections(in_graph(x), raw_head(x)) for x in image_batch(val, imgsz)]
        agree = all(d is not None for d in diffs)
        ok &= agree
        x = next(iter(image_batch(val[:1], imgsz)))
        runners[f"{name} in-graph"] = lambda f=in_graph, x=x: f(x)
        runners[f"{name} raw-head"] = lambda f=raw_head, x=x: f(x)
        rows[name] = {
            "imgsz": imgsz,
            "same_detections": agree,
            "max_box_diff_px": max((d for d in diffs if d is not None), default=None),
        }
    lat = interleaved(runners, args.rounds, args.runs, threads=2)
    dev = describe()
    lines = [
        cpu_line(dev),
        f"onnxruntime, 2 threads, batch 1, {args.rounds} interleaved rounds x {args.runs} runs; "
        f"end to end from the input tensor: model + decode + NMS at conf {CONF}",
        "",
        "| model | px | in-graph p50 ms (p25-p75) | raw-head + host decode p50 ms (p25-p75) | "
        "speed-up | same detections (max box diff px) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        a, b = lat[f"{name} in-graph"], lat[f"{name} raw-head"]
        r |= {"in_graph": a.as_dict(), "raw_head": b.as_dict(), "speedup": a.p50_ms / b.p50_ms}
        diff = r["max_box_diff_px"]
        lines.append(
            f"| {name} | {r['imgsz']} | {a.p50_ms:.2f} ({a.p25_ms:.2f}-{a.p75_ms:.2f}) | "
            f"{b.p50_ms:.2f} ({b.p25_ms:.2f}-{b.p75_ms:.2f}) | {r['speedup']:.2f}x | "
            f"{'yes' if r['same_detections'] else 'NO'}"
            f"{f' ({diff:.4f})' if diff is not None else ''} |"
        )
    publish(out, "head_cut", {"device": dev, "run": run.name, "rows": rows}, "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
