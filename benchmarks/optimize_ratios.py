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
import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

WS = env.configure()
env.disable_openvino_telemetry()

from edge.latency import interleaved, openvino_runner, ort_runner  # noqa: E402
from yeo.evaluation import EvalSettings, evaluate  # noqa: E402
from yeo.io import atomic_write_text, write_json  # noqa: E402


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _size(path: Path) -> int:
    """File size; for an OpenVINO .xml, the .xml plus its .bin weights."""
    bin_ = path.with_suffix(".bin")
    return path.stat().st_size + (bin_.stat().st_size if path.suffix == ".xml" else 0)


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


def ultralytics_openvino_int8(base_pt: Path, data_yaml: Path, imgsz: int, out: Path) -> Path:
    """ultralytics' OpenVINO INT8 export (NNCF post-training quantization)."""
    env.configure_ultralytics()
    from ultralytics import YOLO

    f = Path(YOLO(str(base_pt)).export(format="openvino", int8=True, data=str(data_yaml),
                                       imgsz=imgsz, batch=1))  # fmt: skip
    dest = out / "ultralytics_int8_openvino_model"  # ultralytics knows the format by this suffix
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    f.replace(dest)
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
    ov_models: dict[str, tuple[Path, str | None]] = {}  # name -> (model, precision hint)
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
    if importlib.util.find_spec("openvino") is None:
        peers["openvino"] = "not installed (pip install '.[bench]')"
    else:
        # OpenVINO on our own files: its CPU default is bf16 on AMX; f32 forces true FP32
        ov_models["openvino_default_base_fp32"] = (models["base_fp32"], None)
        ov_models["openvino_f32_base_fp32"] = (models["base_fp32"], "f32")
        if table["selected"] in models:
            ov_models[f"openvino_default_{table['selected']}"] = (models[table["selected"]], None)
        peers["openvino"] = "ok (openvino_* rows on our files: latency only, not re-scored)"
        try:
            ov_dir = ultralytics_openvino_int8(Path(variants["base_pt"]["path"]), args.data,
                                               imgsz, out)  # fmt: skip
            ov_models["ultralytics_openvino_int8"] = (next(ov_dir.glob("*.xml")), None)
            maps["ultralytics_openvino_int8"] = evaluate(ov_dir, args.data, settings).map50_95
        except Exception as e:  # a peer that cannot be built is a status, not a crash
            peers["ultralytics_openvino_int8"] = f"failed: {e}"
    runners = {n: ort_runner(p, args.threads) for n, p in models.items()}
    runners |= {n: openvino_runner(p, args.threads, hint) for n, (p, hint) in ov_models.items()}
    lat = interleaved(runners, args.rounds, args.runs, threads=args.threads)
    models |= {n: p for n, (p, _) in ov_models.items()}
    base = lat["base_fp32"].p50_ms
    base_size = Path(models["base_fp32"]).stat().st_size
    rows = []
    for name, path in models.items():
        rows.append({
            "model": name, "p50_ms": lat[name].p50_ms, "p90_ms": lat[name].p90_ms,
            "p99_ms": lat[name].p99_ms, "speedup_vs_base_fp32": base / lat[name].p50_ms,
            "size_bytes": _size(path), "size_ratio": base_size / _size(path),
            "map50_95": maps.get(name),
            "map_delta_vs_base_pt": maps[name] - maps["base_pt"] if name in maps else None,
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
        for peer in ("ultralytics_int8", "ultralytics_openvino_int8"):
            if peer in by:
                u = by[peer]
                targets[f"faster than {peer} at >= mAP"] = (
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
            f"{r['size_ratio']:.1f}x | {_fmt(r['map50_95'], '.4f')} | "
            f"{_fmt(r['map_delta_vs_base_pt'], '+.4f')} |"
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
