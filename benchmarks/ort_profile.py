"""Where the time goes: onnxruntime's optimized graph and its per-operator profile, for the
ONNX variants of an optimize run side by side (speed lever 4 of the speed issue).

    python benchmarks/ort_profile.py [--run outputs/optimize/<run>] [--runs 200] [--threads 2]

For each variant: the operators of the graph onnxruntime actually runs (all optimizations,
``optimized_model_filepath``), how many QuantizeLinear/DequantizeLinear are left, and the
share of model time per operator type from onnxruntime's own profiler (``enable_profiling``,
``--runs`` calls on the run's timing image). A raw-head variant's host decode is not in the
profile (it is not onnxruntime's); its end-to-end time is in the run's variants table.
Writes ``ort_profile.{json,md}`` beside the run's benchmark table. Exits 0.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

env.configure()

from benchmarks.common import cpu_line, open_run, parser, publish  # noqa: E402
from edge.device import describe  # noqa: E402
from edge.preprocess import load_image, preprocess  # noqa: E402


def profile(model: Path, image: str | None, runs: int, threads: int, tmp: Path) -> dict:
    """Optimized-graph op counts and per-op-type milliseconds per call on ``image`` (noise
    if None), letterboxed to the model's input size."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.optimized_model_filepath = str(tmp / f"{model.stem}.optimized.onnx")
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp / model.stem)
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name, shape = sess.get_inputs()[0].name, sess.get_inputs()[0].shape
    x = (
        preprocess(load_image(image), shape[-1])[0]
        if image
        else np.random.default_rng(0).random(shape, np.float32)
    )
    for _ in range(runs):
        sess.run(None, {name: x})
    trace = json.loads(Path(sess.end_profiling()).read_text())
    per_op: dict[str, float] = defaultdict(float)
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"] / 1000 / runs
    ops = Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    return {"ops": dict(ops), "ms_per_op_type": dict(per_op), "ms_total": sum(per_op.values())}


def main() -> int:
    ap = parser(__doc__, runs=200, rounds=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    opened = open_run(args.run)
    run = opened.path
    table = json.loads((run / "variants.json").read_text())
    image = (table.get("timing") or {}).get("image")  # in the dataset: the busiest val image
    image = str(opened.dataset() / image) if image else None
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in table["variants"]:
            if v["format"] != "onnx":
                continue
            rows[v["name"]] = profile(
                run / "variants" / v["file"], image, args.runs, args.threads, Path(tmp)
            )
    dev = describe()
    lines = [
        cpu_line(dev),
        f"onnxruntime profiler, {args.threads} threads, {args.runs} calls; ms per call by "
        "operator type (top 8), and Q/DQ nodes left in the optimized graph",
        "",
        "| variant | model ms | top operators (ms) | QuantizeLinear / DequantizeLinear left |",
        "|---|---|---|---|",
    ]
    for name, r in rows.items():
        top = sorted(r["ms_per_op_type"].items(), key=lambda kv: -kv[1])[:8]
        ops = r["ops"]
        lines.append(
            f"| {name} | {r['ms_total']:.2f} | "
            + ", ".join(f"{k} {v:.2f}" for k, v in top)
            + f" | {ops.get('QuantizeLinear', 0)} / {ops.get('DequantizeLinear', 0)} |"
        )
    data = {"device": dev, "run": run.name, "rows": rows}
    publish(opened.out(), "ort_profile", data, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
