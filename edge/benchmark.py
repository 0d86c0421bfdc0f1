"""On-device latency benchmark of an edge bundle or ONNX file, and a merge of device reports.

    python -m edge.benchmark BUNDLE|BUNDLE.tar.gz|MODEL.onnx [--threads N] [--runs N] [--warmup N]
                             [--backend onnxruntime|openvino] [--precision f32] [--out r.json]
    python -m edge.benchmark merge a.json b.json ... [--out table]   # -> table.md, table.csv

Times the model alone (batch 1) and end to end from an already decoded RGB image (letterbox,
model, decode + NMS; reading and JPEG-decoding the file is not timed) over the bundle's golden
images (or ``--image`` files, or one synthetic 640x480 image), and
reports percentiles, throughput, peak RSS, model size and the device. Needs only numpy,
onnxruntime and pillow (OpenVINO when asked for).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from edge import device
from edge.fileio import write_json, write_text
from edge.latency import summarize, time_calls
from edge.preprocess import load_image, preprocess
from edge.runtime import Detector

SCHEMA = "yeo-edge-benchmark/1"
REQUIRED = ("schema", "model", "device", "settings", "model_ms", "end_to_end_ms")


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process (None where the OS does not tell)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def _images(target: Path, given: list[Path]) -> tuple[list[Image.Image], str]:
    if given:
        return [load_image(p) for p in given], f"{len(given)} given image(s)"
    index = target / "golden" / "golden.json"
    golden = []
    if index.is_file():
        golden = [target / "golden" / c["image"] for c in json.loads(index.read_text())["cases"]]
    if golden:
        return [load_image(p) for p in golden], f"{len(golden)} golden image(s) of the bundle"
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return [Image.fromarray(noise)], "1 synthetic 640x480 noise image"


def _stats(times: list[float], threads: int, backend: str) -> dict[str, float | int]:
    lat = summarize(times, threads, backend).as_dict()
    return {k: v for k, v in lat.items() if k not in ("threads", "provider")}


def run(
    target: Path,
    backend: str | None = None,
    threads: int = 2,
    runs: int = 100,
    warmup: int = 10,
    precision: str | None = None,
    images: list[Path] | None = None,
) -> dict[str, object]:
    """Benchmark ``target`` (bundle dir or .onnx) and return the versioned report; ``backend``
    None: the one a bundle declares (when installed), else onnxruntime."""
    target = Path(target)
    model_file = target / "model.onnx" if target.is_dir() else target
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file}: no such model file")
    det = Detector(target, threads, backend=backend, precision=precision)
    backend = det.engine.backend
    imgs, source = _images(target, images or [])
    x, _ = preprocess(imgs[0], det.imgsz)
    print(
        f"benchmark: {model_file.name} on {backend}, {threads} thread(s): model only ...",
        file=sys.stderr,
    )
    model_ms = time_calls(lambda: det.raw(x), warmup, runs, min_seconds=0)
    pre: list[float] = []
    post: list[float] = []
    total: list[float] = []
    print(f"benchmark: end to end over {source} ...", file=sys.stderr)
    for i in range(warmup + runs):
        _, ms = det.timed(imgs[i % len(imgs)])
        if i >= warmup:
            pre.append(ms["preprocess"])
            post.append(ms["postprocess"])
            total.append(sum(ms.values()))
    model = _stats(model_ms, threads, backend)
    e2e = _stats(total, threads, backend)
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "path": str(target),
            "file": model_file.name,
            "size_bytes": model_file.stat().st_size,
            "imgsz": det.imgsz,
            "classes": len(det.names),
        },
        "device": device.describe(),
        "settings": {
            "backend": backend,
            "threads": threads,
            "runs": runs,
            "warmup": warmup,
            "precision_hint": det.engine.precision_hint,
            "batch": 1,
            "images": source,
        },
        "model_ms": model,
        "end_to_end_ms": e2e,
        "preprocess_ms": _stats(pre, threads, backend),
        "postprocess_ms": _stats(post, threads, backend),
        "pre_post_share_of_model": (np.median(pre) + np.median(post)) / model["p50_ms"],
        "throughput_fps": {"model": 1000 / model["mean_ms"], "end_to_end": 1000 / e2e["mean_ms"]},
        "peak_rss_mb": peak_rss_mb(),
    }


def render(report: dict) -> str:
    """A short human-readable summary of one report."""
    m, e, d, s = report["model_ms"], report["end_to_end_ms"], report["device"], report["settings"]
    rss = report.get("peak_rss_mb")
    return "\n".join(
        [
            f"model        {report['model']['path']} "
            f"({report['model']['size_bytes'] / 1e6:.2f} MB, "
            f"imgsz {report['model']['imgsz']})",
            f"device       {d['cpu']} ({d['arch']}, {d['usable_cores']} cores, "
            f"{' '.join(d['isa']) or 'no listed ISA flags'}), {d['os']}",
            f"runtime      {s['backend']} {d['runtimes'].get(s['backend'], '')}, "
            f"{s['threads']} thread(s), precision {s['precision_hint']}, {s['runs']} runs",
            "",
            "|            | p50 ms | p90 ms | p99 ms | mean ms | std ms | fps |",
            "|---|---|---|---|---|---|---|",
            f"| model      | {m['p50_ms']:.2f} | {m['p90_ms']:.2f} | {m['p99_ms']:.2f} | "
            f"{m['mean_ms']:.2f} | {m['std_ms']:.2f} | {report['throughput_fps']['model']:.1f} |",
            f"| end to end | {e['p50_ms']:.2f} | {e['p90_ms']:.2f} | {e['p99_ms']:.2f} | "
            f"{e['mean_ms']:.2f} | {e['std_ms']:.2f} | "
            f"{report['throughput_fps']['end_to_end']:.1f} |",
            "",
            f"pre {report['preprocess_ms']['p50_ms']:.2f} ms + post "
            f"{report['postprocess_ms']['p50_ms']:.2f} ms = "
            f"{report['pre_post_share_of_model']:.0%} of model p50; images: {s['images']}; "
            + (f"peak RSS {rss:.0f} MB" if rss else "peak RSS n/a"),
        ]
    )


def load_report(path: Path) -> dict:
    """Read a report, with a one-line error for a file that is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON report ({e})") from None
    missing = [k for k in REQUIRED if k not in data] if isinstance(data, dict) else list(REQUIRED)
    if missing:
        raise ValueError(f"{path}: not an edge benchmark report (missing {', '.join(missing)})")
    if data["schema"] != SCHEMA:
        raise ValueError(f"{path}: schema {data['schema']!r}, this tool reads {SCHEMA!r}")
    return data


MERGE_COLUMNS = (
    "device",
    "cpu",
    "cores",
    "isa",
    "backend",
    "threads",
    "precision",
    "model",
    "size_mb",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "e2e_p50_ms",
    "fps",
    "peak_rss_mb",
)


def merge_rows(reports: list[dict]) -> list[dict[str, object]]:
    rows = []
    for r in reports:
        d, s, m = r["device"], r["settings"], r["model_ms"]
        rows.append(
            {
                "device": d["hostname"],
                "cpu": d["cpu"],
                "cores": d["usable_cores"],
                "isa": " ".join(d["isa"]),
                "backend": s["backend"],
                "threads": s["threads"],
                "precision": s["precision_hint"],
                "model": Path(r["model"]["path"]).name,
                "size_mb": round(r["model"]["size_bytes"] / 1e6, 2),
                "p50_ms": round(m["p50_ms"], 3),
                "p90_ms": round(m["p90_ms"], 3),
                "p99_ms": round(m["p99_ms"], 3),
                "e2e_p50_ms": round(r["end_to_end_ms"]["p50_ms"], 3),
                "fps": round(r["throughput_fps"]["end_to_end"], 1),
                "peak_rss_mb": round(r["peak_rss_mb"], 1) if r.get("peak_rss_mb") else None,
            }
        )
    return rows


def merge_markdown(rows: list[dict[str, object]]) -> str:
    lines = ["| " + " | ".join(MERGE_COLUMNS) + " |", "|" + "---|" * len(MERGE_COLUMNS)]
    lines += [
        "| " + " | ".join("" if r[c] is None else str(r[c]) for c in MERGE_COLUMNS) + " |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def merge_csv(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MERGE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _merge(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m edge.benchmark merge", description="Join device reports into one table."
    )
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="prefix: writes PREFIX.md, PREFIX.csv")
    args = ap.parse_args(argv)
    try:
        rows = merge_rows([load_report(p) for p in args.reports])
    except ValueError as e:
        print(f"edge.benchmark: error: {e}", file=sys.stderr)
        return 1
    md = merge_markdown(rows)
    if args.out:
        write_text(args.out.with_suffix(".md"), md)
        write_text(args.out.with_suffix(".csv"), merge_csv(rows))
    print(md, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        return _merge(argv[1:])
    ap = argparse.ArgumentParser(
        prog="python -m edge.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("target", type=Path, help="bundle directory, bundle .tar.gz or .onnx file")
    ap.add_argument(
        "--backend",
        default=None,
        choices=("onnxruntime", "openvino"),
        help="default: the bundle's own (metadata.json runtime), else onnxruntime",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--precision", default=None, help="OpenVINO precision hint, e.g. f32")
    ap.add_argument("--image", type=Path, action="append", default=[], help="image(s) for e2e")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.runs < 1 or args.warmup < 0:
        ap.error("--threads and --runs must be >= 1, --warmup >= 0")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            target = args.target
            if target.name.endswith(".tar.gz"):  # a bundle archive: unpack, then time it
                from edge.bundle_format import extract

                target = extract(target, Path(tmp))
            report = run(
                target,
                args.backend,
                args.threads,
                args.runs,
                args.warmup,
                args.precision,
                args.image,
            )
            report["model"]["path"] = str(args.target)
    except (OSError, ValueError, ImportError, tarfile.TarError) as e:
        print(f"edge.benchmark: error: {e}", file=sys.stderr)
        return 1
    if args.out:
        write_json(args.out, report)
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
