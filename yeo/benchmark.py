"""Side-by-side latency of every variant of an optimize run and its peers, in one process.

Peers: ultralytics' own INT8 ONNX export (``quantize=8``) of the base model and, when
OpenVINO is installed, its OpenVINO INT8 export (NNCF) plus OpenVINO running our own files.
All models are timed in interleaved rounds by :mod:`edge.latency` (batch 1, same threads),
so drift on a noisy machine hits them alike; every model with known accuracy is scored by
the one evaluator.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from edge.latency import Runner, detect_runner, interleaved
from yeo.benchmark_config import BenchmarkConfig
from yeo.env import configure_ultralytics, disable_openvino_telemetry, workspace
from yeo.errors import ConfigError, UserError
from yeo.evaluation import EvalSettings, evaluate
from yeo.optimize.export import onnx_metadata

log = logging.getLogger(__name__)


def check(cfg: BenchmarkConfig) -> None:
    """The named run exists here."""
    if cfg.run and not (Path(cfg.run) / "variants.json").is_file():
        raise ConfigError(f"benchmark.run: {cfg.run} has no variants.json")


def latest_run() -> Path:
    """The newest ``outputs/optimize/<run>`` with a variants table."""
    runs = sorted(
        (workspace().outputs / "optimize").glob("*/variants.json"), key=lambda p: p.stat().st_mtime
    )
    if not runs:
        raise UserError("no optimize run found; run `python run.py --pipeline optimize` first")
    return runs[-1].parent


def onnx_imgsz(path: Path) -> int:
    """The square input size recorded in an ultralytics ONNX export."""
    return int(onnx_metadata(path)[0]["imgsz"][0])


def size_of(path: Path) -> int:
    """File size; for an OpenVINO .xml, the .xml plus its .bin weights."""
    extra = path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0
    return path.stat().st_size + extra


def ultralytics_int8(base_pt: Path, data_yaml: Path, imgsz: int, out: Path) -> Path:
    """ultralytics' own INT8 ONNX export (its calibration, its quantization settings)."""
    configure_ultralytics()
    from ultralytics import YOLO

    f = YOLO(str(base_pt)).export(
        format="onnx", quantize=8, data=str(data_yaml), imgsz=imgsz, simplify=False, batch=1
    )
    dest = out / "ultralytics_int8.onnx"
    Path(f).replace(dest)
    return dest


def ultralytics_openvino_int8(base_pt: Path, data_yaml: Path, imgsz: int, out: Path) -> Path:
    """ultralytics' OpenVINO INT8 export (NNCF post-training quantization); the model dir."""
    configure_ultralytics()
    disable_openvino_telemetry()
    from ultralytics import YOLO

    f = Path(
        YOLO(str(base_pt)).export(
            format="openvino", int8=True, data=str(data_yaml), imgsz=imgsz, batch=1
        )
    )
    dest = out / "ultralytics_int8_openvino_model"  # ultralytics knows the format by this suffix
    if dest.exists():
        shutil.rmtree(dest)
    f.replace(dest)
    return dest


Model = tuple[Path, str, str | None]  # file, runtime (onnxruntime | openvino), OpenVINO hint


def _reason(e: Exception) -> str:
    return " ".join(str(e).split())[:200]


def _openvino_peers(
    models: dict[str, Model],
    maps: dict[str, float],
    selected: str | None,
    base_pt: Path,
    data_yaml: Path,
    settings: EvalSettings,
    out: Path,
) -> str:
    """Add OpenVINO rows to ``models`` (our files, and ultralytics' OpenVINO INT8); a status."""
    if importlib.util.find_spec("openvino") is None:
        return "not installed (pip install openvino)"
    # OpenVINO on our own files: its CPU default is bf16 on AVX512-BF16/AMX CPUs
    base = models["base_fp32"][0]
    models["openvino_default_base_fp32"] = (base, "openvino", None)
    models["openvino_f32_base_fp32"] = (base, "openvino", "f32")
    if selected in models and models[selected][1] == "onnxruntime":  # an _ov one already is
        models[f"openvino_default_{selected}"] = (models[selected][0], "openvino", None)
    try:
        ov_dir = ultralytics_openvino_int8(base_pt, data_yaml, settings.imgsz, out)
        score = evaluate(ov_dir, data_yaml, settings)
        maps["ultralytics_openvino_int8"] = score.map50_95
    except Exception as e:  # a peer that cannot be built is a status, not a crash
        return f"export failed: {_reason(e)}"
    models["ultralytics_openvino_int8"] = (next(ov_dir.glob("*.xml")), "openvino", None)
    return "ok (openvino_* rows on our files: latency only)"


def run_dataset(rep: dict[str, Any]) -> Path:
    """The processed dataset a run's ``report.json`` names, in this workspace, refused unless
    it is the version the run was scored on (its DVC hash): after a newer ``--pipeline data``
    the same folder holds other images."""
    from yeo.data.versioning import folder_hash

    root = workspace().root
    folder = root / rep["data"]["location"]
    if not (folder / "data.yaml").is_file():
        raise UserError(f"{folder}: the run's dataset is not here (DVC: dvc pull)")
    want = rep["data"].get("dvc_hash")
    if want and (have := folder_hash(root, folder)) != want:
        raise UserError(
            f"{folder}: holds DVC version {have}, but the run was scored on {want}; check "
            f"that version out (the .dvc file or dvc.lock of the run's commit, then "
            f"`dvc checkout`) or run the optimize pipeline again"
        )
    return folder


def run_report(run: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """``run`` (default: the newest optimize run) and its ``report.json``; a run without its
    report is refused, so nothing is ever scored on another dataset than the run's."""
    run = run or latest_run()
    report = run / "report.json"
    if not report.is_file():
        raise UserError(
            f"{report}: missing, so the run's dataset is unknown; re-run the "
            "optimize pipeline (it writes the report even when the budget fails)"
        )
    return run, json.loads(report.read_text())


def build_variant(
    weights: Path,
    name: str,
    v: dict[str, Any],
    imgsz: int,
    out: Path,
    calib: list[Path],
    rep: dict[str, Any],
) -> Path:
    """Variant ``name`` (its table row ``v``: precision, recipe, head) rebuilt from
    ``weights`` at ``imgsz`` into ``out`` with the pipeline's own functions and the run's
    settings (``rep``, its report): exported as the export step does (the run's opset,
    dynamic axis and simplify, checked on val images; once per weights file), INT8 with the
    recipe the run recorded for the row, calibrated on ``calib``, cut at the head where the
    row's variant is."""
    from dataclasses import fields

    from yeo.optimize.export import cut_head, export_variant
    from yeo.optimize.quantize import quantize
    from yeo.optimize.recipes import QuantRecipe
    from yeo.optimize.settings import OptimizeConfig

    optimize = OptimizeConfig.parse("optimize", rep["config"]["optimize"])
    stem = name.rsplit("_", 1)[0]
    fp32 = out / f"{stem}_fp32_{imgsz}.onnx"
    if not fp32.is_file():
        log.info("benchmark: exporting %s at %d px", stem, imgsz)
        export_variant(weights, fp32, imgsz, optimize, run_dataset(rep))
    path = fp32
    if v["precision"] == "w8":
        from yeo.optimize.quantize import quantize_weights

        path = quantize_weights(fp32, out / f"{name}_{imgsz}.onnx")
    elif (v.get("recipe") or {}).get("backend") == "nncf":
        from yeo.optimize.quantize import quantize_nncf

        log.info("benchmark: NNCF INT8 of %s at %d px", name, imgsz)
        path = quantize_nncf(fp32, out / f"{name}_{imgsz}.onnx", calib, imgsz)
    elif v["precision"] == "int8":
        known = {f.name for f in fields(QuantRecipe)}
        recipe = QuantRecipe(**{k: x for k, x in v["recipe"].items() if k in known})
        log.info("benchmark: quantizing %s at %d px (%s)", name, imgsz, recipe.name)
        path = quantize(fp32, out / f"{name}_{imgsz}.onnx", recipe, calib, imgsz)
    if v.get("head") == "raw":
        cut_head(path, out / f"{name}_{imgsz}_raw.onnx")
        path = out / f"{name}_{imgsz}_raw.onnx"
    return path


def calibration_set(rep: dict[str, Any]) -> list[Path]:
    """The calibration images the run's INT8 used: its count and seed, from train only."""
    from yeo.optimize.dataset import split_images
    from yeo.optimize.quantize import calibration_images

    quant = rep["config"]["optimize"]["quant"]
    train = split_images(run_dataset(rep), "train")
    return calibration_images(train, quant["calib_images"], quant["seed"])


def backend_of(v: dict[str, Any]) -> str:
    """What runs a variant of a run's table (runs before the backend axis: onnxruntime)."""
    return v.get("backend") or "onnxruntime"


def variants_at(
    run: Path, variants: dict[str, dict[str, Any]], imgsz: int, out: Path, rep: dict[str, Any]
) -> dict[str, Path]:
    """The run's ONNX variants rebuilt at ``imgsz`` from the same weights: exported again,
    INT8 with the recipe the run chose for it (calibrated at ``imgsz`` on the same number of
    train images, same seed), cut at the head where the run's variant is."""
    calib = calibration_set(rep)
    weights = {
        "base": run / "variants" / variants["base_pt"]["file"],
        "pruned": run / "prune" / "model" / "best.pt",
    }
    return {
        name: build_variant(weights[name.split("_")[0]], name, v, imgsz, out, calib, rep)
        for name, v in variants.items()
        if v["format"] == "onnx"
    }


def compare(
    run: Path,
    out: Path,
    rounds: int,
    runs: int,
    threads: int,
    peers: list[str],
    imgsz: int | None = None,
) -> dict[str, Any]:
    """Time the run's ONNX variants and the requested peers; the rows and the peer status.
    ``imgsz`` other than the run's: every variant rebuilt at that size (:func:`variants_at`)
    and every model, the base ``.pt`` too, scored again at it."""
    table = json.loads((run / "variants.json").read_text())
    _, rep = run_report(run)
    data_yaml = run_dataset(rep) / "data.yaml"
    split = (rep.get("held_out") or {}).get("split", "val")  # the run's reported split
    variants = {v["name"]: v for v in table["variants"]}
    local = {n: run / "variants" / v["file"] for n, v in variants.items()}  # the run's copies
    run_size = onnx_imgsz(local["base_fp32"])
    imgsz = imgsz or run_size
    base_pt = local["base_pt"]
    out.mkdir(parents=True, exist_ok=True)
    settings = EvalSettings(imgsz=imgsz, split=split)
    if imgsz == run_size:
        paths = {n: local[n] for n, v in variants.items() if v["format"] == "onnx"}
        maps = {n: (v.get("held_out") or v)["map50_95"] for n, v in variants.items()}
    else:  # the size axis' variants are their full-size rows at other inputs: rebuilt once
        same = {n: v for n, v in variants.items() if v.get("imgsz") in (None, run_size)}
        ort = {n: v for n, v in same.items() if backend_of(v) != "openvino"}
        # an OpenVINO-only variant (<prefix>_w8_ov, <prefix>_nncf_ov) is built under its file's name
        alone = {n[:-3]: v for n, v in same.items() if n not in ort and n[:-3] not in same}
        built = variants_at(run, ort | alone, imgsz, out, rep)
        paths = (
            {n: p for n, p in built.items() if n in ort}
            | {  # an _ov variant runs the file of its name's
                n: built[n[:-3]] for n in same if n not in ort and n[:-3] in built
            }
        )
        maps = {"base_pt": evaluate(base_pt, data_yaml, settings).map50_95} | {
            n: evaluate(p, data_yaml, settings, backend_of(variants[n])).map50_95
            for n, p in paths.items()
        }
    models: dict[str, Model] = {n: (p, backend_of(variants[n]), None) for n, p in paths.items()}
    pruned = {n for n, v in variants.items() if v["pruned"]}
    status: dict[str, str] = {}
    if "ultralytics_int8" in peers:
        try:
            peer = ultralytics_int8(base_pt, data_yaml, imgsz, out)
            maps["ultralytics_int8"] = evaluate(peer, data_yaml, settings).map50_95
            models["ultralytics_int8"] = (peer, "onnxruntime", None)
            status["ultralytics_int8"] = "ok"
        except Exception as e:  # a peer that cannot be built is a row status, not a crash
            status["ultralytics_int8"] = f"failed: {_reason(e)}"
    if "openvino" in peers:
        status["openvino"] = _openvino_peers(
            models, maps, table["selected"], base_pt, data_yaml, settings, out
        )
    timing = table.get("timing") or {}
    image = run_dataset(rep) / timing["image"] if timing.get("image") else None
    conf = float(timing.get("conf", 0.25))
    runners: dict[str, Runner] = {  # end to end: model + decode + NMS, as the select step
        name: detect_runner(path, threads, runtime, hint, image, conf)
        for name, (path, runtime, hint) in models.items()
    }
    log.info(
        "benchmark: timing %d models, %d interleaved rounds x %d runs", len(runners), rounds, runs
    )

    def progress(i: int) -> None:
        log.info("benchmark: round %d/%d done", i, rounds)

    lat = interleaved(runners, rounds, runs, threads=threads, on_round=progress)
    base_ms, base_size = lat["base_fp32"].p50_ms, size_of(models["base_fp32"][0])
    rows = [
        {
            "model": name,
            "p50_ms": lat[name].p50_ms,
            "p90_ms": lat[name].p90_ms,
            "p99_ms": lat[name].p99_ms,
            "p25_ms": lat[name].p25_ms,
            "p75_ms": lat[name].p75_ms,
            "pruned": name in pruned or any(name.endswith(f"_{p}") for p in pruned),
            "speedup_vs_base_fp32": base_ms / lat[name].p50_ms,
            "size_bytes": size_of(path),
            "size_ratio": base_size / size_of(path),
            "map50_95": maps.get(name),
            "map_delta_vs_base_pt": maps[name] - maps["base_pt"] if name in maps else None,
        }
        for name, (path, _, _) in models.items()
    ]
    return {
        "run": str(run),
        "selected": table["selected"],
        "imgsz": imgsz,
        "split": split,
        "threads": threads,
        "rounds": rounds,
        "runs": runs,
        "rows": rows,
        "peers": status,
        "end_to_end": f"model + decode + NMS at conf {conf}"
        + (f", on {image.name}" if image else ", on noise"),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| model | pruned | p50 ms (p25-p75) | p90 ms | p99 ms | speed-up | size MB | size ratio "
        f"| mAP50-95 ({result.get('split', 'val')}) | Δ vs .pt |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        mark = " **(selected)**" if r["model"] == result["selected"] else ""
        lines.append(
            f"| {r['model']}{mark} | {'yes' if r['pruned'] else 'no'} | {r['p50_ms']:.2f} "
            f"({r['p25_ms']:.2f}-{r['p75_ms']:.2f}) | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['speedup_vs_base_fp32']:.2f}x | {r['size_bytes'] / 1e6:.2f} | "
            f"{r['size_ratio']:.1f}x | {_fmt(r['map50_95'], '.4f')} | "
            f"{_fmt(r['map_delta_vs_base_pt'], '+.4f')} |"
        )
    peers = ", ".join(f"{k}: {v}" for k, v in result["peers"].items()) or "none"
    lines += [
        "",
        f"onnxruntime unless the name says openvino; batch 1, {result['imgsz']} px, "
        f"{result['threads']} "
        f"thread(s), {result['rounds']} interleaved rounds x {result['runs']} runs, end to end "
        f"({result.get('end_to_end', 'model only')}); speed-up and size ratio vs base_fp32. "
        "Compare p50s across runtimes only as measured here, on this CPU; pruned rows are "
        "not like for like with unpruned peers.",
        f"Peers: {peers}",
    ]
    return "\n".join(lines) + "\n"
