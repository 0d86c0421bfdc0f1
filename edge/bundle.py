"""Assemble an edge bundle: model, metadata, labels, golden cases, benchmark, the edge code,
and a SHA-256 manifest over every file; published atomically as a folder and a .tar.gz.

Layout (``FORMAT``)::

    model.onnx  model.ort  required_operators.config  model.arm.ort  required_operators.arm.config
    metadata.json  labels.txt  MODEL_CARD.md
    benchmark.json  MANIFEST.sha256
    golden/golden.json  golden/NNN.jpg|png  golden/NNN.rgb.npy (the decoded image)
    golden/NNN.input.npy
    golden/NNN.output.npy (one output) or golden/NNN.output.npz (a raw head: arr_0..arr_5 in
    metadata.json's output order)  golden/NNN.detections.json  edge/*.py

``python -m edge.verify BUNDLE`` checks all of it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.benchmark import run as run_benchmark
from edge.bundle_format import (
    FORMAT,
    IGNORED,
    save_output,
    write_manifest,
)
from edge.compare import fused_vs_unfused, output_errors
from edge.fileio import atomic_dir, sha256, write_json, write_text
from edge.preprocess import load_image, preprocess
from edge.runtime import Detector

EDGE_SOURCE = Path(__file__).resolve().parent
# how far a port (other CPU, other runtime build) may be from the golden outputs
TOLERANCE = {
    "fp32": {"input_atol": 2 / 255, "box_atol_px": 0.5, "score_atol": 0.01},
    "int8": {"input_atol": 2 / 255, "box_atol_px": 2.0, "score_atol": 0.05},
    # int8 weights, float arithmetic: a port computes what the golden run computed
    "w8": {"input_atol": 2 / 255, "box_atol_px": 0.5, "score_atol": 0.01},
    # a bundle chosen on OpenVINO: its bf16 (and its own int8 kernels) against the onnxruntime
    # golden outputs; measured up to 1.7 px / 0.045 on 20 val images of the default run
    # and NMS may keep another of two near-tied anchors of one object (edge.verify.nms_swaps)
    "openvino": {"input_atol": 2 / 255, "box_atol_px": 3.0, "score_atol": 0.08, "nms_swaps": 1},
}


def tolerance(precision: str, backend: str = "onnxruntime") -> dict[str, float]:
    """The golden tolerance of a bundle: its precision's, widened to what its backend needs."""
    tol = TOLERANCE[precision]
    if backend == "onnxruntime":
        return tol
    return {k: max(tol.get(k, 0), v) for k, v in TOLERANCE[backend].items()}


class PortabilityError(ValueError):
    """The model's outputs depend on the CPU's integer arithmetic beyond the tolerance."""


def io_spec(detector: Detector) -> dict[str, dict[str, object]]:
    """Input and output description read from the model itself."""
    engine = detector.engine
    return {
        "input": {
            "name": engine.input_name,
            "shape": list(engine.input_shape),
            "dtype": "float32",
            "layout": "NCHW",
            "color": "RGB",
            "scale": 1 / 255,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "letterbox": {
                "resize": "cv2 INTER_LINEAR (half-pixel centres, no antialiasing, 11-bit "
                "fixed-point weights) to round(w*r) x round(h*r), r = min(S/w, S/h)",
                "pad_value": 114,
                "square": detector.imgsz,
                "padding": "left = round((S - new_w)/2 - 0.1), top = round((S - new_h)/2 - 0.1)",
                "boxes_back": "x = (x - left) / (new_w / w), y = (y - top) / (new_h / h)",
            },
            "orientation": "EXIF applied before letterbox",
        },
        "output": output_spec(detector),
    }


def output_spec(detector: Detector) -> dict[str, object]:
    """The model's outputs, exactly enough to decode them in another language."""
    engine = detector.engine
    nc = len(detector.names)
    if not detector.strides:
        return {
            "name": engine.output_name,
            "shape": list(engine.output_shape),
            "dtype": "float32",
            "layout": "(1, 4 + num_classes, anchors): cx, cy, w, h in input pixels, then one "
            "sigmoid score per class; decode = best class per anchor, conf filter, "
            "class-aware NMS, undo letterbox",
            "num_classes": nc,
        }
    shapes = list(engine.outputs.items())
    reg_max = shapes[0][1][1] // 4
    tensors = [
        {
            "name": name,
            "shape": list(shape),
            "level": i // 2,
            "stride": detector.strides[i // 2],
            "kind": "box_distribution" if i % 2 == 0 else "class_logits",
        }
        for i, (name, shape) in enumerate(shapes)
    ]
    return {
        "layout": "raw_head",
        "dtype": "float32",
        "num_classes": nc,
        "reg_max": reg_max,
        "strides": detector.strides,
        "tensors": tensors,
        "decode": (
            "per level (stride s, grid H x W, anchor i = row * W + col, centre (col + 0.5, "
            "row + 0.5)): class_logits (1, num_classes, H, W); score = sigmoid(max logit), keep "
            "anchors with max logit > log(conf / (1 - conf)); box_distribution (1, 4 * reg_max, "
            "H, W) is 4 sides (left, top, right, bottom) x reg_max bins: side = sum_k k * "
            "softmax(bins)_k; box xyxy = (cx - left, cy - top, cx + right, cy + bottom) * s; "
            "then class-aware NMS over all levels, undo letterbox (edge/postprocess.py "
            "decode_raw_head is the reference)"
        ),
    }


def write_golden(
    folder: Path,
    detector: Detector,
    images: list[Path],
    precision: str,
    backend: str = "onnxruntime",
) -> dict:
    """Input tensors, raw outputs and final detections for ``images``, with tolerances.
    ``detector`` runs onnxruntime (the reference every port checks against); ``backend`` is
    what the bundle was chosen on: the tolerance covers it (:func:`tolerance`), and
    ``edge.verify`` checks it too.

    Each case also runs through the model unfused (onnxruntime without graph optimizations:
    an INT8 QDQ model then computes DequantizeLinear -> float Conv -> QuantizeLinear, as a CPU
    without int16 saturation does); the largest difference on the anchors decoding keeps is
    recorded next to the tolerance (``observed``), so a reader sees how much of the tolerance
    another CPU kind's arithmetic uses.
    """

    folder.mkdir(parents=True)
    inputs = []
    outputs = []
    cases = []
    for i, src in enumerate(images):
        stem = f"{i:03d}"
        name = f"{stem}{Path(src).suffix.lower()}"
        shutil.copy(src, folder / name)  # the original bytes: ports test their decoder too
        image = load_image(folder / name)
        x, box = preprocess(image, detector.imgsz)
        out = detector.raw(x)
        inputs.append(x)
        outputs.append(out)
        dets = detector.detections(out, box, image.width, image.height)
        np.save(folder / f"{stem}.rgb.npy", np.asarray(image))  # decoded: HxWx3 uint8 RGB
        np.save(folder / f"{stem}.input.npy", x)
        save_output(folder / stem, out)
        write_json(folder / f"{stem}.detections.json", [d.as_dict() for d in dets])
        cases.append(
            {
                "image": name,
                "source": Path(src).name,
                "width": image.width,
                "height": image.height,
                "letterbox_scale": box.scale,
                "detections": len(dets),
            }
        )
    tol = tolerance(precision, backend)
    box_err, score_err = fused_vs_unfused(detector.model_path, inputs, detector.conf)
    observed = {"box_px": box_err, "score": score_err}
    if observed["box_px"] > tol["box_atol_px"] or observed["score"] > tol["score_atol"]:
        raise PortabilityError(
            f"{Path(detector.model_path).name}: outputs depend on the CPU's integer arithmetic "
            f"(box {observed['box_px']:.2f} px, score {observed['score']:.3f} off the unfused "
            f"reference; tolerance {tol['box_atol_px']} px / {tol['score_atol']}): quantize "
            "with a portable recipe (pairsafe or 7bit) so the bundle verifies on every CPU"
        )
    golden = {
        "tolerance": tol,
        "conf": detector.conf,
        "iou": detector.iou,
        # how far other ways of running the same model are from these golden outputs: what
        # the tolerance has to cover (and does, or the bundle is refused above)
        "observed": {"unfused_reference": observed} | other_runtimes(detector, inputs, outputs),
        "cases": cases,
    }
    write_json(folder / "golden.json", golden)
    return golden


def other_runtimes(
    detector: Detector, inputs: list[np.ndarray], golden: list[np.ndarray | list[np.ndarray]]
) -> dict[str, dict[str, float] | str]:
    """Largest box (px) and score differences from the golden outputs, over the anchors
    decoding keeps, of: onnxruntime on one thread, the ORT-format models (when written; the Arm
    one run here, on this CPU) and OpenVINO (when installed)."""
    from edge.engine import load

    model = Path(detector.model_path)
    runs = {"onnxruntime_1_thread": load(model, "onnxruntime", 1).run_all}
    for ort_file, name in ((model.with_suffix(".ort"), "ort_format"), *ARM_ORT):
        if (model.parent / ort_file).is_file():
            runs[name] = load(model.parent / ort_file, "onnxruntime", 1).run_all
    out: dict[str, dict[str, float] | str] = {}
    try:
        runs["openvino"] = load(model, "openvino", 1, precision="f32").run_all
        runs["openvino_default"] = load(model, "openvino", 1).run_all  # bf16 where the CPU has it
    except ImportError:
        out["openvino"] = "not installed (pip install openvino)"
    for name, run in runs.items():
        errs = [
            output_errors(detector.dense(g), detector.dense(run(x)), detector.conf)
            for x, g in zip(inputs, golden, strict=True)
        ]
        out[name] = {
            "box_px": max((e[0] for e in errs), default=0.0),
            "score": max((e[1] for e in errs), default=0.0),
        }
    return out


# another machine's run of the finished bundle folder: what it saw, recorded in golden.json's
# "observed" (it raises when the bundle fails there), or why it did not run
Observer = Callable[[Path], "dict | str"]


def build(
    model: Path,
    dest: Path,
    metadata: dict,
    golden_images: list[Path],
    card: Callable[[dict], str] | None = None,
    benchmark_runs: int = 100,
    threads: int = 2,
    observers: dict[str, Observer] | None = None,
) -> tuple[Path, Path]:
    """Write the bundle to ``dest`` and ``dest``.tar.gz; nothing is left behind on failure.

    ``metadata`` must hold ``name``, ``version``, ``classes`` (id -> name), ``thresholds``
    (conf, iou) and ``precision``; input/output specs are read from the model. ``card`` makes
    MODEL_CARD.md from the final metadata. ``observers`` (name -> run) check the finished
    folder elsewhere (an emulated Arm64 CPU, :mod:`yeo.arm64`); each result goes into
    golden.json's ``observed`` under its name before the manifest is sealed.
    """
    dest = Path(dest)
    archive = dest.with_name(dest.name + ".tar.gz")
    tar_tmp = dest.parent / f".{archive.name}.tmp"
    try:
        with atomic_dir(dest) as tmp:
            tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is for sharing
            _assemble(tmp, model, metadata, golden_images, card, benchmark_runs, threads)
            if observers:
                observe(tmp, observers)
            with tarfile.open(tar_tmp, "w:gz") as tar:
                tar.add(tmp, arcname=dest.name, filter=_no_cache)
        tar_tmp.replace(archive)
    except BaseException:
        tar_tmp.unlink(missing_ok=True)
        raise
    return dest, archive


def observe(folder: Path, observers: dict[str, Observer]) -> None:
    """Run each observer on the sealed ``folder``, record what it saw in golden.json's
    ``observed``, and seal the manifest again."""
    path = folder / "golden" / "golden.json"
    golden = json.loads(path.read_text())
    for name, run in observers.items():
        golden["observed"][name] = run(folder)
    write_json(path, golden)
    write_manifest(folder)


def _assemble(
    tmp: Path,
    model: Path,
    metadata: dict,
    golden_images: list[Path],
    card: Callable[[dict], str] | None,
    benchmark_runs: int,
    threads: int,
) -> None:
    """Every file of the bundle, into the folder ``tmp``, the manifest last."""
    shutil.copy(model, tmp / "model.onnx")
    ort_format(tmp / "model.onnx")
    classes = {str(k): v for k, v in metadata["classes"].items()}
    labels = [classes[str(i)] for i in range(len(classes))]
    write_text(tmp / "labels.txt", "\n".join(labels) + "\n")
    meta = {"format": FORMAT, **metadata, "classes": classes}
    write_json(tmp / "metadata.json", meta)  # thresholds must be readable by the Detector
    detector = Detector(tmp, threads, backend="onnxruntime")  # the golden outputs' reference
    meta |= io_spec(detector)
    meta["model"] = {
        **meta.get("model", {}),
        "file": "model.onnx",
        "sha256": sha256(tmp / "model.onnx"),
        "ort_format": {  # the same model for onnxruntime's minimal and mobile builds
            "file": "model.ort",
            "sha256": sha256(tmp / "model.ort"),
            "required_operators": "required_operators.config",
            "optimization_style": "Fixed",
            "target_platform": "any (no x86-only NCHWc layout)",
            "arm": {  # optimized for Arm CPUs: for Raspberry Pi, Jetson, i.MX, Rockchip
                "file": "model.arm.ort",
                "sha256": sha256(tmp / "model.arm.ort"),
                "required_operators": "required_operators.arm.config",
                "optimization_style": "Fixed",
                "target_platform": "arm",
            },
        },
    }
    write_json(tmp / "metadata.json", meta)
    backend = metadata.get("runtime", {}).get("backend", "onnxruntime")
    write_golden(tmp / "golden", detector, golden_images, metadata["precision"], backend)
    shutil.copytree(
        EDGE_SOURCE, tmp / "edge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "bundles")
    )
    if card is not None:
        write_text(tmp / "MODEL_CARD.md", card(meta))
    write_json(tmp / "benchmark.json", run_benchmark(tmp, threads=threads, runs=benchmark_runs))
    write_manifest(tmp)


# the Arm ORT-format model beside the x86 one: (file, name in golden.json's observed)
ARM_ORT = (("model.arm.ort", "ort_format_arm"),)


def ort_format(onnx_file: Path) -> Path:
    """``model.ort`` and ``required_operators.config`` beside ``onnx_file``, by onnxruntime's
    own converter, for minimal and mobile builds (``--include_ops_by_config``), and their Arm
    twins ``model.arm.ort`` and ``required_operators.arm.config`` (``--target_platform arm``:
    int8 QDQ kernels Arm prefers). 'Fixed' optimization style, onnxruntime's advice for the CPU
    provider: optimizations are baked in; the first file leaves out the x86-only layout
    (NCHWc), so both run on any CPU."""
    folder = onnx_file.parent
    for platform, stem in ((None, "model"), ("arm", "model.arm")):
        with tempfile.TemporaryDirectory(dir=folder) as work:
            src = Path(work) / "model.onnx"
            shutil.copy(onnx_file, src)
            cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(src)]
            res = subprocess.run(
                [*cmd, "--output_dir", work, "--optimization_style", "Fixed"]
                + (["--target_platform", platform] if platform else []),
                capture_output=True,
                text=True,
                timeout=600,
            )
            ort_file = Path(work) / "model.ort"
            if res.returncode or not ort_file.is_file():
                last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
                raise PortabilityError(
                    f"{onnx_file.name}: ORT-format conversion ({platform or 'any'}) failed: "
                    f"{last[0]}"
                )
            ort_file.replace(folder / f"{stem}.ort")
            ops = "required_operators" + stem.removeprefix("model")
            (Path(work) / "model.required_operators.config").replace(folder / f"{ops}.config")
    return folder / "model.ort"


def _no_cache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if any(i in info.name for i in IGNORED) else info
