"""How far pruning can go: the ratio / mAP / latency curve of an optimize run's base model.

    python benchmarks/prune_curve.py [--run outputs/optimize/<run>] [--ratios 0.3 0.5]
                                     [--activation relu] [--prune finetune_epochs=10 lr0=0.002]
                                     [--rounds 5] [--runs 30]

For each ratio the run's base weights are pruned and fine-tuned as the run's prune step did
(its steps, fine-tune epochs and lr, importance, activation and distillation, unless
``--activation`` or ``--prune KEY=VALUE`` say otherwise), exported, quantized with the run's
INT8 recipe for its pruned variant (calibrated on the same train images), cut at the head, and
scored on val by the project's evaluator (val: this chooses a ratio). Then every model is
timed end to end (model + decode + NMS), interleaved in one process, against the run's base
FP32 (in-graph decode). Writes ``prune_curve.{json,md,png}`` into
``outputs/benchmarks/<run>/<--name>/`` (default ``prune_curve``). Not part of ``make run``:
each ratio costs a whole prune + fine-tune. Exits 0: a curve has no target.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

env.configure()

from benchmarks.common import cpu_line, open_run, parser, publish  # noqa: E402
from edge.device import describe  # noqa: E402
from edge.latency import detect_runner, interleaved  # noqa: E402
from yeo.benchmark import build_variant, calibration_set  # noqa: E402
from yeo.errors import ConfigError  # noqa: E402
from yeo.evaluation import EvalConfig, evaluate  # noqa: E402
from yeo.optimize.prune import prune_and_finetune  # noqa: E402
from yeo.optimize.settings import PruneConfig  # noqa: E402
from yeo.report.plots import pyplot, save_figure  # noqa: E402
from yeo.train.config import TrainConfig  # noqa: E402


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5])
    ap.add_argument("--activation", default=None, help="default: the run's")
    ap.add_argument("--prune", nargs="*", default=[], metavar="KEY=VALUE", help="optimize.prune")
    ap.add_argument("--name", default="prune_curve", help="output folder under the run's")
    args = ap.parse_args()
    opened = open_run(args.run)
    run, rep = opened.path, opened.report
    table = json.loads((run / "variants.json").read_text())
    opt, by = rep["config"]["optimize"], {v["name"]: v for v in table["variants"]}
    bad = [kv for kv in args.prune if "=" not in kv]
    if bad:
        ap.error(f"--prune takes KEY=VALUE pairs of optimize.prune, got {bad}")
    # values read as YAML, as Hydra reads them on the command line ("scan_ratios=[0.5]")
    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.prune)}
    if args.activation:
        overrides["activation"] = args.activation
    run_prune = opt["prune"] | {k: opt[k] for k in ("activation",) if k in opt}  # older runs
    try:
        prune = PruneConfig.parse("optimize.prune", run_prune | overrides)
    except ConfigError as e:
        ap.error(str(e))
    train = TrainConfig.parse("train", rep["config"]["train"])
    dataset = opened.dataset()
    settings = EvalConfig.parse("eval", rep["config"]["eval"]).settings(train.imgsz, "cpu")
    out = opened.out(args.name)
    calib = calibration_set(rep)
    base_pt = run / "variants" / by["base_pt"]["file"]
    int8_row = by.get("pruned_int8") or by["base_int8"]  # its recipe and head
    models = {"base_fp32": run / "variants" / by["base_fp32"]["file"]}
    rows: dict[str, dict] = {
        "base_fp32": {
            "ratio": 0.0,
            "precision": "fp32",
            "map50_95": by["base_fp32"]["map50_95"],
            "size_bytes": models["base_fp32"].stat().st_size,
        }
    }
    # the judge: the run's evaluator on val, for schedule=sensitivity's scan
    for ratio in args.ratios:
        tag = f"pruned{round(ratio * 100)}"
        started = time.perf_counter()
        res = prune_and_finetune(
            base_pt,
            dataset / "data.yaml",
            prune.model_copy(update={"ratio": ratio}),
            train,
            out / tag,
            judge=lambda w: evaluate(w, dataset / "data.yaml", settings).map50_95,
        )
        seconds = time.perf_counter() - started
        for precision, row in (
            ("fp32", {"precision": "fp32", "head": int8_row["head"]}),
            ("int8", int8_row),
        ):
            name = f"{tag}_{precision}"
            models[name] = build_variant(res.weights, name, row, train.imgsz, out, calib, rep)
            rows[name] = {
                "ratio": ratio,
                "precision": precision,
                "params": res.after.params,
                "macs": res.after.macs,
                "prune_seconds": round(seconds, 1),
                "map50_95": evaluate(models[name], dataset / "data.yaml", settings).map50_95,
                "size_bytes": models[name].stat().st_size,
            }
            print(f"{name}: val mAP50-95 {rows[name]['map50_95']:.4f}", flush=True)
    image = dataset / table["timing"]["image"]
    threads = int(opt.get("threads", 2))
    runners = {
        n: detect_runner(p, threads, image=image, conf=table["timing"]["conf"])
        for n, p in models.items()
    }
    lat = interleaved(runners, rounds=args.rounds, runs=args.runs, warmup=10, threads=threads)
    base_ms, base_map = lat["base_fp32"].p50_ms, by["base_pt"]["map50_95"]
    for name, t in lat.items():
        rows[name] |= {
            "p50_ms": t.p50_ms,
            "p25_ms": t.p25_ms,
            "p75_ms": t.p75_ms,
            "speedup": base_ms / t.p50_ms,
            "map_drop_vs_base_pt": base_map - rows[name]["map50_95"],
        }
    cpu = describe()
    result = {
        "run": run.name,
        "cpu": cpu,
        "activation": prune.activation,
        "prune": prune.model_dump(),
        "budget": opt["max_map_drop"],
        "base_pt_map50_95": base_map,
        "rows": rows,
    }
    publish(out, "prune_curve", result, markdown(result))
    plot(result, out / "prune_curve.png")
    return 0


def markdown(result: dict) -> str:
    cpu = result["cpu"]
    p = result["prune"]
    lines = [
        cpu_line(cpu),
        f"Activation {result['activation']}, {p['steps']} steps x {p['finetune_epochs']} "
        f"fine-tune epochs, distill {p['distill']}; val mAP50-95 (this chooses a ratio); "
        f"base .pt {result['base_pt_map50_95']:.4f}, budget {result['budget']}",
        "",
        "| model | ratio | val mAP50-95 | drop vs .pt | p50 ms (p25-p75) | speed-up | size MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        size = f"{r['size_bytes'] / 1e6:.1f}" if "size_bytes" in r else "-"
        lines.append(
            f"| {name} | {r['ratio']:.2f} | {r['map50_95']:.4f} | "
            f"{r['map_drop_vs_base_pt']:+.4f} | {r['p50_ms']:.2f} ({r['p25_ms']:.2f}-"
            f"{r['p75_ms']:.2f}) | {r['speedup']:.2f}x | {size} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> Path:
    """Val mAP50-95 against p50 latency, one line per precision, points labelled by ratio;
    the budget line under the base .pt."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for precision, color in (("fp32", "#4C72B0"), ("int8", "#DD8452")):
        pts = sorted(
            (r["p50_ms"], r["map50_95"], r["ratio"])
            for n, r in result["rows"].items()
            if r["precision"] == precision
        )
        ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], "o-", color=color, label=precision)
        for x, y, ratio in pts:
            ax.annotate(f"{ratio:.0%}", (x, y), textcoords="offset points", xytext=(4, 4))
    floor = result["base_pt_map50_95"] - result["budget"]
    ax.axhline(floor, color="grey", ls="--", lw=1, label=f"budget ({result['budget']} below .pt)")
    ax.set_xlabel("p50 latency, ms (end to end, interleaved)")
    ax.set_ylabel("val mAP50-95")
    ax.set_title("Pruning ratio: accuracy against latency")
    ax.legend()
    return save_figure(plt, fig, path)


if __name__ == "__main__":
    sys.exit(main())
