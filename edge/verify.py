"""Check an edge bundle: manifest, metadata, model, and golden cases within tolerance.

    python -m edge.verify BUNDLE_DIR_OR_TAR_GZ
    python -m edge.verify BUNDLE --port DIR
    python -m edge.verify BUNDLE --report FILE

Exit 0 with one ``OK`` line, or exit 1 with one line per fault, each naming the file and
what is wrong: a changed byte, a missing or unlisted file, a model that does not load, or
outputs/detections off the golden tolerance.

``--port DIR`` checks a port's own dumps instead of running the model here: for each golden
case ``NNN``, ``DIR/NNN.input.npy`` (its preprocessing, from ``golden/NNN.rgb.npy`` or its own
decode of ``golden/NNN.jpg``), ``DIR/NNN.output.npy`` or ``.npz`` (its model outputs) and
``DIR/NNN.detections.json`` (its decode + NMS), with the golden files' names, layouts and
tolerances. Each fault names the case and the stage (input, output, detections).

``--report FILE`` also writes the verdict as JSON, with each model file's largest errors and
the machine and onnxruntime version it ran on (how :mod:`yeo.arm64` reads an emulated Arm run).

Raw outputs (a raw head's made dense first, :func:`edge.postprocess.raw_head_dense`) are
compared only on the anchors that matter: those whose best class score reaches
the bundle's confidence threshold in the golden output or in this run's (every other anchor is
discarded by decoding, so noise there says nothing about a port). Detections after NMS are
compared too.
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from edge.bundle_format import MANIFEST, bundle_files, extract, load_output
from edge.compare import kept_anchors, output_errors
from edge.engine import installed
from edge.fileio import sha256, write_json
from edge.metadata import MetadataError, read_metadata
from edge.postprocess import in_graph_layout
from edge.preprocess import load_image, preprocess
from edge.runtime import Detector, declared_backend


def check_manifest(root: Path) -> list[str]:
    """Faults of the file set: missing, changed, unlisted files, or a bad manifest."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        return [f"{MANIFEST}: missing, nothing can be checked"]
    faults, listed = [], {}
    for n, line in enumerate(manifest.read_text().splitlines(), 1):
        digest, _, rel = line.partition("  ")
        bad_path = not rel or PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts
        if len(digest) != 64 or bad_path:
            faults.append(f"{MANIFEST}: line {n} is not '<sha256>  <relative path>'")
            continue
        listed[rel] = digest
    for rel, digest in listed.items():
        if not (root / rel).is_file():
            faults.append(f"{rel}: listed in {MANIFEST} but missing")
        elif sha256(root / rel) != digest:
            faults.append(f"{rel}: SHA-256 differs from {MANIFEST} (file changed)")
    faults += [
        f"{rel}: not listed in {MANIFEST}" for rel in bundle_files(root) if rel not in listed
    ]
    return faults


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _boxes_match(a: dict, b: dict, atol: float, swap_iou: float | None = None) -> bool:
    if a["class_id"] != b["class_id"]:
        return False
    if max(abs(x - y) for x, y in zip(a["box"], b["box"], strict=True)) <= atol:
        return True
    return swap_iou is not None and _iou(a["box"], b["box"]) > swap_iou


def check_detections(
    expected: list[dict],
    got: list[dict],
    conf: float,
    tol: dict,
    scale: float,
    swap_iou: float | None = None,
) -> str | None:
    """Each confident detection on one side is matched, one to one, by a detection on the other
    of the same class, its box within ``box_atol_px`` and its score within ``score_atol``; so a
    duplicate left by a broken NMS, or a score off by more than the tolerance, is a fault.
    Detections within ``score_atol`` of the threshold may come and go. ``swap_iou`` (a bundle
    chosen on another backend than the golden outputs': bf16): a box overlapping by more than
    the NMS IoU also matches, since near-tied anchors of one object may swap which one NMS keeps
    (the raw outputs of both are still checked anchor by anchor)."""
    atol = tol["box_atol_px"] / scale + 1.0  # input pixels -> original pixels, plus rounding
    sure = conf + tol["score_atol"]
    for side, mine, theirs in (("expected", expected, got), ("produced", got, expected)):
        free = list(theirs)
        for d in sorted(mine, key=lambda d: -d["score"]):
            if d["score"] < sure:
                continue
            near = [o for o in free if _boxes_match(d, o, atol, swap_iou)]
            match = min(near, key=lambda o: abs(o["score"] - d["score"]), default=None)
            off = abs(match["score"] - d["score"]) if match else 0.0
            if match is None or off > tol["score_atol"]:
                what = f"{d['class_name']} {d['score']:.3f} at {[round(v, 1) for v in d['box']]}"
                if match:
                    why = (
                        f"the box there scores {match['score']:.3f} (tolerance {tol['score_atol']})"
                    )
                elif any(_boxes_match(d, o, atol, swap_iou) for o in theirs):
                    why = "its match is taken by another detection (a duplicate)"
                else:
                    why = "no box of its class within tolerance"
                return f"{side} detection {what} has no match: {why}"
            free.remove(match)
    return None


# the ONNX model and its ORT-format twins (x86, Arm: each runs on any CPU, optimized for one)
MODEL_FILES = ("model.onnx", "model.ort", "model.arm.ort")


def nms_swaps(golden: dict) -> float | None:
    """The IoU above which a swapped NMS winner still matches (``tolerance.nms_swaps``: a
    bundle chosen on OpenVINO), else None."""
    return float(golden["iou"]) if golden["tolerance"].get("nms_swaps") else None


def check_golden(root: Path, errors: dict | None = None) -> tuple[list[str], str]:
    """Faults of every model file against the golden cases, and a one-line summary of the
    errors (the worst over the model files); ``errors`` receives each file's largest."""
    faults: list[str] = []
    worst = {"input": 0.0, "box": 0.0, "score": 0.0, "anchors": 0}
    golden = json.loads((root / "golden" / "golden.json").read_text())
    runs = [(f, "onnxruntime") for f in MODEL_FILES if (root / f).is_file()]
    backend = declared_backend(root)
    note = ""
    if backend != "onnxruntime":  # what it was chosen on, as it will run
        if installed(backend):
            runs.append(("model.onnx", backend))
        else:
            note = f"; not checked on {backend}, the backend it was chosen on: not installed here"
    checked = []
    for model_file, on in runs:
        label = _label(model_file, on)
        found, errs = _check_model(root, model_file, golden, on)
        faults += found
        if errors is not None:
            errors[label] = errs
        worst = {k: max(worst[k], errs[k]) for k in worst}
        checked.append(label)
    summary = (
        f"{len(golden['cases'])} golden cases x {' + '.join(checked)}, max error: input "
        f"{worst['input']:.4f}, box {worst['box']:.4f} px, score {worst['score']:.5f} (over "
        f"{worst['anchors']} anchors scoring >= {golden['conf']}){note}"
    )
    return faults, summary


def _label(model_file: str, backend: str) -> str:
    """How faults and the summary name a model file run on ``backend``."""
    return model_file if backend == "onnxruntime" else f"{model_file}@{backend}"


def _check_model(
    root: Path, model_file: str, golden: dict, backend: str = "onnxruntime"
) -> tuple[list[str], dict]:
    """Faults of one model file on ``backend`` against the golden cases, and its largest
    errors; a fault names the file and, off onnxruntime, the backend."""
    name = _label(model_file, backend)
    meta = json.loads((root / "metadata.json").read_text())
    tol = golden["tolerance"]
    worst = {"input": 0.0, "box": 0.0, "score": 0.0, "anchors": 0}
    th = meta["thresholds"]
    try:
        det = Detector(
            root / model_file, threads=1, conf=th["conf"], iou=th["iou"], backend=backend
        )
    except Exception as e:  # onnxruntime raises its own exception types for a bad model
        return [f"{name}: does not load ({' '.join(str(e).split())[:200]})"], worst
    if list(det.engine.input_shape) != list(meta["input"]["shape"]):
        return [
            f"{name}: input shape {list(det.engine.input_shape)} but metadata.json "
            f"says {meta['input']['shape']}"
        ], worst
    faults = []
    for case in golden["cases"]:
        stem = Path(case["image"]).stem
        x = np.load(root / "golden" / f"{stem}.input.npy")
        try:
            expected = det.dense(load_output(root / "golden" / stem))
        except (OSError, ValueError) as e:
            faults.append(f"golden/{stem}: no readable golden output ({e})")
            continue
        image = load_image(root / "golden" / case["image"])
        x_here, box = preprocess(image, det.imgsz)
        in_err = float(np.abs(x_here - x).max())
        worst["input"] = max(worst["input"], in_err)
        if in_err > tol["input_atol"]:  # this case's error, not the running maximum
            faults.append(
                f"golden/{case['image']}: preprocessing differs from {stem}.input.npy "
                f"by {in_err:.4f} > {tol['input_atol']:.4f}"
            )
        raw = det.raw(x)
        out = det.dense(raw)
        if out.shape != expected.shape:
            faults.append(
                f"{name}: golden/{stem}.output: shape {expected.shape}, model gives {out.shape}"
            )
            continue
        box_err, score_err = output_errors(expected, out, golden["conf"])
        worst["box"], worst["score"] = max(worst["box"], box_err), max(worst["score"], score_err)
        worst["anchors"] += int(kept_anchors(expected, out, golden["conf"]).sum())
        if box_err > tol["box_atol_px"] or score_err > tol["score_atol"]:
            faults.append(
                f"{name}: golden/{stem}.output: model output off tolerance on anchors "
                f"scoring >= {golden['conf']} (box {box_err:.3f} px > "
                f"{tol['box_atol_px']} or score {score_err:.4f} > {tol['score_atol']})"
            )
            continue
        got = [d.as_dict() for d in det.detections(raw, box, image.width, image.height)]
        want = json.loads((root / "golden" / f"{stem}.detections.json").read_text())
        problem = check_detections(
            want, got, golden["conf"], tol, case["letterbox_scale"], nms_swaps(golden)
        )
        if problem:
            faults.append(f"{name}: golden/{stem}.detections.json: {problem}")
    return faults, worst


def check_metadata(root: Path) -> list[str]:
    try:
        meta = read_metadata(root)
        json.loads((root / "golden" / "golden.json").read_text())
    except MetadataError as e:
        return [str(e)]
    except (OSError, json.JSONDecodeError) as e:
        return [f"{getattr(e, 'filename', None) or 'golden/golden.json'}: unreadable ({e})"]
    labels = (root / "labels.txt").read_text().splitlines()
    names = [meta["classes"][str(i)] for i in range(len(meta["classes"]))]
    return [] if labels == names else ["labels.txt: does not match the classes in metadata.json"]


def verify(root: Path, errors: dict | None = None) -> tuple[list[str], str]:
    """(faults, summary) of the bundle at ``root``; no faults means it passes. ``errors``
    receives each model file's largest input, box and score errors."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a bundle directory"], ""
    faults = check_manifest(root)
    if faults:  # never run a model or golden files that are not the ones built
        return faults, ""
    faults = check_metadata(root)
    if faults:
        return faults, ""
    return check_golden(root, errors)


def report(faults: list[str], summary: str, errors: dict) -> dict:
    """What ``--report`` writes: the verdict, each model file's largest errors, and the
    machine and onnxruntime it ran on (no timing: see ``edge.benchmark``)."""
    import platform

    import onnxruntime

    return {
        "ok": not faults,
        "faults": faults,
        "summary": summary,
        "errors": errors,
        "onnxruntime": onnxruntime.__version__,
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def check_port(root: Path, port: Path) -> tuple[list[str], str]:
    """Faults of a port's dumped outputs against the bundle's golden cases, one per case and
    stage (input, output, detections), and a one-line summary."""
    meta = json.loads((root / "metadata.json").read_text())
    golden = json.loads((root / "golden" / "golden.json").read_text())
    tol, conf = golden["tolerance"], golden["conf"]
    out_spec = meta["output"]
    strides = out_spec["strides"] if out_spec.get("layout") == "raw_head" else None
    faults: list[str] = []
    checked = 0
    for case in golden["cases"]:
        stem = Path(case["image"]).stem
        where = f"case {stem} ({case['source']})"
        got_input = port / f"{stem}.input.npy"
        if not got_input.is_file():
            faults.append(f"{where}: stage input: {got_input.name} missing in {port}")
            continue
        x = np.load(root / "golden" / f"{stem}.input.npy")
        mine = np.load(got_input)
        if mine.shape != x.shape:
            faults.append(f"{where}: stage input: shape {mine.shape}, golden {x.shape}")
            continue
        err = float(np.abs(mine.astype(np.float32) - x).max())
        if err > tol["input_atol"]:
            rows = np.flatnonzero(np.abs(mine - x).max(axis=(0, 1, 3)) > tol["input_atol"])
            faults.append(
                f"{where}: stage input: off by {err:.4f} > {tol['input_atol']:.4f} "
                f"(first bad row {int(rows[0])} of {x.shape[2]})"
            )
            continue
        try:
            produced = in_graph_layout(load_output(port / stem), strides)
        except (OSError, ValueError) as e:
            faults.append(f"{where}: stage output: {stem}.output.npy/.npz unreadable ({e})")
            continue
        expected = in_graph_layout(load_output(root / "golden" / stem), strides)
        if produced.shape != expected.shape:
            faults.append(f"{where}: stage output: shape {produced.shape}, golden {expected.shape}")
            continue
        box_err, score_err = output_errors(expected, produced, conf)
        if box_err > tol["box_atol_px"] or score_err > tol["score_atol"]:
            faults.append(
                f"{where}: stage output: box {box_err:.3f} px (tolerance {tol['box_atol_px']}) "
                f"or score {score_err:.4f} (tolerance {tol['score_atol']}) off"
            )
            continue
        dets = port / f"{stem}.detections.json"
        if not dets.is_file():
            faults.append(f"{where}: stage detections: {dets.name} missing in {port}")
            continue
        want = json.loads((root / "golden" / f"{stem}.detections.json").read_text())
        problem = check_detections(
            want,
            json.loads(dets.read_text()),
            conf,
            tol,
            case["letterbox_scale"],
            nms_swaps(golden),
        )
        if problem:
            faults.append(f"{where}: stage detections: {problem}")
            continue
        checked += 1
    summary = f"port {port}: {checked} of {len(golden['cases'])} golden cases match at every stage"
    return faults, summary


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m edge.verify", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument("bundle", type=Path, help="bundle folder or .tar.gz")
    parser.add_argument("--port", type=Path, help="a port's dumps, named as golden/'s files")
    parser.add_argument(
        "--report", type=Path, help="also write the verdict and each model file's errors (JSON)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    target = args.bundle
    with tempfile.TemporaryDirectory() as tmp:
        try:
            root = extract(target, Path(tmp)) if target.name.endswith(".tar.gz") else target
        except (OSError, ValueError, tarfile.TarError) as e:
            print(f"edge.verify: FAIL {target}: {e}", file=sys.stderr)
            return 1
        errors: dict = {}
        faults, summary = verify(root, errors)
        if not faults and args.port is not None:
            if not args.port.is_dir():
                faults = [f"{args.port}: no such folder (--port)"]
            else:
                faults, summary = check_port(root, args.port)
    if args.report is not None:
        write_json(args.report, report(faults, summary, errors))
    for fault in faults:
        print(f"edge.verify: FAIL {target}: {fault}", file=sys.stderr)
    if faults:
        return 1
    print(f"edge.verify: OK {target}: manifest matches, {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
