"""Performance targets of the optimize pipeline, measured as ratios in one run on one machine.

    python benchmarks/optimize_ratios.py [--run outputs/optimize/<run>] [--rounds 5] [--runs 30]
                                         [--imgsz 0 640] [--skip-peer NAME ...]

Runs the same harness as ``python run.py --pipeline benchmark`` (:mod:`yeo.benchmark`: every
variant plus ultralytics' INT8 ONNX and, when installed, OpenVINO peers, interleaved) and
checks the targets: selected vs base FP32 ONNX p50 >= 3x faster, file >= 6x smaller,
mAP50-95 within 0.01 of the base .pt; and faster than each ultralytics INT8 path, at an
mAP50-95 not more than the same 0.01 below that peer's (equally accurate by the budget's
measure). A size where the base .pt scores below 0.05 mAP50-95 (the default data at 640 px:
images rendered at 256 and a model trained at 256, letterboxed) is speed only: its accuracy
targets are "not checked", never PASS, and its peer targets check latency alone.
Every target is checked at the run's own size (``0``) and at 640 px, where every variant is
rebuilt from the same weights (INT8 with the run's recipe, recalibrated at 640) and scored and
timed again. Writes ``ratios.json`` / ``ratios.md`` next to the benchmark table. Exits 1 when
any target at any size is SHORT (or no variant was selected), 0 when every one passes. A peer
that could not be run (OpenVINO not installed, its export failed) is SHORT too, unless named
with ``--skip-peer``; the table says which peers were skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

env.configure()

from benchmarks.common import cpu_line, open_run, parser, publish  # noqa: E402
from edge.device import describe  # noqa: E402
from yeo.benchmark import compare, markdown  # noqa: E402
from yeo.benchmark_config import PEERS  # noqa: E402

BUDGET = 0.01  # mAP50-95: the speed issue's budget, optimize.max_map_drop's default
TARGET_PEERS = ("ultralytics_int8", "ultralytics_openvino_int8")  # rows of the benchmark table


MIN_MAP = 0.05  # mAP50-95 below this is noise: a size where the base scores under it is timed only
LABEL = {True: "PASS", False: "SHORT", None: f"not checked (speed only: mAP50-95 below {MIN_MAP})"}


def speed_only(result: dict) -> bool:
    """Whether the base .pt scores under :data:`MIN_MAP` at this size (the default data at 640
    px: a 256-px model on 256-px images, letterboxed), so no accuracy target can pass there."""
    s = next((r for r in result["rows"] if r["model"] == result["selected"]), None)
    return s is not None and s["map50_95"] - s["map_delta_vs_base_pt"] < MIN_MAP


def targets(result: dict, skip: tuple[str, ...] = ()) -> dict[str, bool | None]:
    """Each target: True (PASS), False (SHORT) or None (an accuracy target at a size that is
    speed only). A peer without a scored row is SHORT unless it is in ``skip``: a target
    cannot pass by going missing."""
    by = {r["model"]: r for r in result["rows"]}
    s = by.get(result["selected"])
    if s is None:
        return {}
    timed_only = speed_only(result)
    found: dict[str, bool | None] = {
        "latency >= 3x vs base_fp32": s["speedup_vs_base_fp32"] >= 3,
        "size >= 6x smaller": s["size_ratio"] >= 6,
        f"mAP50-95 within {BUDGET} of base": (
            None if timed_only else s["map_delta_vs_base_pt"] >= -BUDGET
        ),
    }
    for peer in TARGET_PEERS:
        if peer in skip:
            continue
        u = by.get(peer, {})
        scored = u.get("map50_95") is not None and u.get("p50_ms") is not None
        faster = scored and s["p50_ms"] < u["p50_ms"]
        if timed_only:
            found[f"faster than {peer}"] = faster
            found[f"mAP within {BUDGET} of {peer}"] = None
        else:
            found[f"faster than {peer}, mAP within {BUDGET}"] = faster and (
                s["map50_95"] >= u["map50_95"] - BUDGET
            )
    return found


def exit_code(found: dict[str, bool | None]) -> int:
    """0 only when a target passed and none is SHORT (None: not checked at this size)."""
    values = list(found.values())
    return 0 if True in values and False not in values else 1


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--imgsz", type=int, nargs="+", default=[0, 640], help="0: the run's size")
    ap.add_argument(
        "--skip-peer",
        action="append",
        default=[],
        choices=TARGET_PEERS,
        help="a peer whose target is not checked (a missing peer is otherwise SHORT)",
    )
    args = ap.parse_args()
    skip = tuple(args.skip_peer)
    opened = open_run(args.run)
    run, out = opened.path, opened.out()
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
        result["targets"] = targets(result, skip)
        result["skipped_peers"] = list(skip)
        result["speed_only"] = speed_only(result)
        results[result["imgsz"]] = result
        only = f" (speed only: the base scores below {MIN_MAP} mAP50-95 here)"
        texts.append(
            f"## {result['imgsz']} px{only if result['speed_only'] else ''}\n\n"
            + markdown(result)
            + "\nTargets: "
            + ", ".join(f"{k}: {LABEL[v]}" for k, v in result["targets"].items())
            + (f"\nPeers skipped (--skip-peer): {', '.join(skip)}" if skip else "")
        )
        codes.append(exit_code(result["targets"]))
    dev = describe()
    text = cpu_line(dev) + "\n\n" + "\n\n".join(texts)
    publish(out, "ratios", {"cpu": dev, "sizes": results}, text)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
