"""Performance targets of the optimize pipeline, measured as ratios in one run on one machine.

    python benchmarks/optimize_ratios.py [--run outputs/optimize/<run>] [--rounds 5] [--runs 30]
                                         [--imgsz 0 640]

Runs the same harness as ``python run.py --pipeline benchmark`` (:mod:`yeo.benchmark`: every
variant plus ultralytics' INT8 ONNX and, when installed, OpenVINO peers, interleaved) and
checks the targets: selected vs base FP32 ONNX p50 >= 3x faster, file >= 6x smaller,
mAP50-95 within 0.01 of the base .pt; and faster than each ultralytics INT8 path, at an
mAP50-95 not more than the same 0.01 below that peer's (equally accurate by the budget's
measure: at 640 px on the default data every model scores below 0.01, so "at least the
peer's mAP" would compare noise).
Every target is checked at the run's own size (``0``) and at 640 px, where every variant is
rebuilt from the same weights (INT8 with the run's recipe, recalibrated at 640) and scored and
timed again. Writes ``ratios.json`` / ``ratios.md`` next to the benchmark table. Exits 1 when
any target at any size is SHORT (or no variant was selected), 0 when every one passes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

WS = env.configure()

from edge.device import describe  # noqa: E402
from yeo.benchmark import PEERS, compare, latest_run, markdown  # noqa: E402
from yeo.io import atomic_write_text, write_json  # noqa: E402

BUDGET = 0.01  # mAP50-95: the speed issue's budget, optimize.max_map_drop's default


def targets(result: dict) -> dict[str, bool]:
    by = {r["model"]: r for r in result["rows"]}
    s = by.get(result["selected"])
    if s is None:
        return {}
    found = {
        "latency >= 3x vs base_fp32": s["speedup_vs_base_fp32"] >= 3,
        "size >= 6x smaller": s["size_ratio"] >= 6,
        f"mAP50-95 within {BUDGET} of base": s["map_delta_vs_base_pt"] >= -BUDGET,
    }
    for peer in ("ultralytics_int8", "ultralytics_openvino_int8"):
        if peer in by and by[peer]["map50_95"] is not None:
            u = by[peer]
            found[f"faster than {peer}, mAP within {BUDGET}"] = (
                s["p50_ms"] < u["p50_ms"] and s["map50_95"] >= u["map50_95"] - BUDGET
            )
    return found


def exit_code(found: dict[str, bool]) -> int:
    """0 only when there are targets and every one passed."""
    return 0 if found and all(found.values()) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--imgsz", type=int, nargs="+", default=[0, 640], help="0: the run's size")
    args = ap.parse_args()
    run = args.run or latest_run()
    out = WS.outputs / "benchmarks" / run.name
    results, texts, codes = {}, [], []
    for size in args.imgsz:
        result = compare(
            run,
            out / str(size or "run"),
            args.rounds,
            args.runs,
            args.threads,
            list(PEERS),
            size or None,
        )
        result["targets"] = targets(result)
        results[result["imgsz"]] = result
        texts.append(
            f"## {result['imgsz']} px\n\n"
            + markdown(result)
            + "\nTargets: "
            + ", ".join(f"{k}: {'PASS' if v else 'SHORT'}" for k, v in result["targets"].items())
        )
        codes.append(exit_code(result["targets"]))
    write_json(out / "ratios.json", {"cpu": describe(), "sizes": results})
    text = f"CPU: {_cpu()}\n\n" + "\n\n".join(texts)
    atomic_write_text(out / "ratios.md", text + "\n")
    print(text)
    return max(codes)


def _cpu() -> str:
    d = describe()
    return f"{d['cpu']}, {d['usable_cores']} cores, flags {' '.join(d['isa'])}"


if __name__ == "__main__":
    sys.exit(main())
