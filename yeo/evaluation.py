"""The one evaluator every model variant is judged by.

Any model file ultralytics can run (``.pt``, FP32 ONNX, INT8 QDQ ONNX; an ONNX model cut at its
head through the edge runtime's host decode) is scored on the same
split with the same image size, thresholds and letterbox (square, ``rect=False``: static ONNX
inputs cannot take rectangular batches, so neither does the ``.pt``). Returns precision,
recall, mAP50, mAP50-95 and AP50-95 per class for the classes present in the split.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from edge.postprocess import raw_head_dense, raw_head_strides
from yeo.env import configure_ultralytics
from yeo.errors import DataError
from yeo.group import Group

log = logging.getLogger(__name__)


class EvalConfig(Group):
    """The ``eval`` group: the one evaluator every variant is judged by."""

    split: Literal["val"] = "val"  # what chooses
    held_out: Literal["test", "val"] = "test"  # what is reported, scored once after the choice
    bootstrap: int = Field(1000, ge=1)  # image resamples for the 95% intervals of reported mAPs
    conf: float = 0.001
    iou: float = 0.7
    batch: int = 16

    def settings(self, imgsz: int, device: str | int = "auto") -> EvalSettings:
        """The evaluator's settings for models at ``imgsz`` (``.pt`` models on ``device``)."""
        from yeo.train.config import resolve_device

        return EvalSettings(imgsz=imgsz, device=resolve_device(str(device)), **self.model_dump())


class EvalSettings(EvalConfig):
    """Identical for every variant: the ``eval`` group plus the train imgsz. Any split: held-out
    scoring re-targets the same settings to the reported split."""

    split: str = "val"
    imgsz: int
    device: str = "cpu"  # for .pt models; ONNX files are always scored on the CPU


class EvalResult(BaseModel):
    model: str
    format: str
    precision: float
    recall: float
    map50: float
    map50_95: float
    per_class_ap50_95: dict[str, float]
    n_images: int
    n_instances: int
    speed_ms: dict[str, float]  # ultralytics' per-image preprocess/inference/postprocess
    seconds: float
    settings: EvalSettings

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat numbers for MLflow."""
        out = {
            "precision": self.precision,
            "recall": self.recall,
            "mAP50": self.map50,
            "mAP50-95": self.map50_95,
        }
        out |= {f"AP50-95/{k}": v for k, v in self.per_class_ap50_95.items()}
        return {f"{prefix}{k}": float(v) for k, v in out.items()}


@dataclass(frozen=True)
class ImageStats:
    """Per-image matching of one model on one split, in the evaluator's image order: what the
    bootstrap resamples. ``tp`` is (predictions x 10 IoU thresholds) per image."""

    images: list[str]
    tp: list[np.ndarray]
    conf: list[np.ndarray]
    pred_cls: list[np.ndarray]
    target_cls: list[np.ndarray]

    def map50_95(self, idx: np.ndarray | None = None) -> float:
        """mAP50-95 of the images ``idx`` (repeats allowed; all when None), as the evaluator
        computes it (:func:`map50_95`)."""
        idx = np.arange(len(self.images)) if idx is None else idx
        return map50_95(
            np.concatenate([self.tp[i] for i in idx]),
            np.concatenate([self.conf[i] for i in idx]),
            np.concatenate([self.pred_cls[i] for i in idx]),
            np.concatenate([self.target_cls[i] for i in idx]),
        )


def map50_95(
    tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray
) -> float:
    """The mean of ultralytics' ``ap_per_class`` AP table, computed the same way (the same
    sort, cumulative sums and ``compute_ap``) without its F1/precision/recall curves, which
    cost half its time: the bootstrap calls this a thousand times per variant. Equal to
    ``ap_per_class(...)[5].mean()`` (tests/test_heldout.py)."""
    from ultralytics.utils.metrics import compute_ap

    if not len(target_cls):
        return 0.0
    order = np.argsort(-conf)
    tp, pred_cls = tp[order], pred_cls[order]
    classes, labels = np.unique(target_cls, return_counts=True)
    ap = np.zeros((len(classes), tp.shape[1]))
    for ci, (c, n_l) in enumerate(zip(classes, labels, strict=True)):
        hits = tp[pred_cls == c]
        if not len(hits):
            continue
        tpc, fpc = hits.cumsum(0), (1 - hits).cumsum(0)
        recall, precision = tpc / (n_l + 1e-16), tpc / (tpc + fpc)
        for j in range(tp.shape[1]):
            ap[ci, j] = compute_ap(recall[:, j], precision[:, j])[0]
    return float(ap.mean())


def map50_95_resamples(stats: ImageStats, draws: np.ndarray, cells: int = 20_000_000) -> np.ndarray:
    """:meth:`ImageStats.map50_95` for every row of ``draws`` (resamples x image indices) at
    once, equal to it up to the order of equal scores (tests/test_heldout.py).

    A resample weights each prediction by how often its image was drawn, over predictions
    sorted once: copies of one prediction are adjacent, so no resample concatenates or sorts.
    Only two points per true positive reach ``compute_ap``'s envelope and 101-point
    interpolation: the true positive, and the false positives just before it, which stand at
    the previous recall with no higher an envelope than the true positive's (false positives
    lower precision). So a resample needs, per class, only how many predictions it drew up to
    each true positive: its image weights times a fixed (images x true positives) table of
    per-image counts (in chunks of ``cells``), one matrix product for all resamples (exact:
    integers in float32 up to 2**24), never a pass over every prediction per resample.
    Predictions after a class's last true positive cannot raise an envelope and are dropped.
    ``cells`` bounds the work arrays (resamples and count tables are taken in chunks)."""
    n = len(stats.images)
    if not sum(len(t) for t in stats.target_cls):
        return np.zeros(len(draws))
    img = np.repeat(np.arange(n), [len(c) for c in stats.conf])
    order = np.argsort(-np.concatenate([*stats.conf, np.zeros(0)]), kind="stable")
    tp = np.concatenate([*stats.tp, np.zeros((0, 10), bool)])[order]
    cls, img = np.concatenate([*stats.pred_cls, np.zeros(0)])[order], img[order]
    tcls = np.concatenate(stats.target_cls)
    timg = np.repeat(np.arange(n), [len(t) for t in stats.target_cls])
    classes = []
    for c in np.unique(tcls):
        hits, where = tp[cls == c], img[cls == c]
        pos = np.flatnonzero(hits.any(1))  # a true positive at some IoU threshold
        rows = [np.flatnonzero(hits[pos, j]) for j in range(hits.shape[1])]  # indices into pos
        classes.append((where, pos, rows, timg[tcls == c]))
    widest = max((len(pos) for _, pos, _, _ in classes), default=1)
    step = max(1, cells // max(1, widest, n))
    cols = max(1, cells // max(1, n))  # true positives per count table: n x cols cells
    out = np.empty(len(draws))
    for s in range(0, len(draws), step):
        d = draws[s : s + step]
        r = len(d)
        w = np.bincount((d + n * np.arange(r)[:, None]).ravel(), minlength=r * n).reshape(r, n)
        w32 = w.astype(np.float32)
        total, present = np.zeros(r), np.zeros(r)
        for where, pos, rows, targets in classes:
            n_l = w[:, targets].sum(1).astype(np.float64)
            present += n_l > 0
            seen = _drawn_up_to(w32, where, pos, cols)  # drawn predictions up to each TP
            wt = w[:, where[pos]].astype(np.float64)  # each TP's weight: its image's draws
            ap = np.zeros(r)
            for tp_rows in rows:
                if len(tp_rows):
                    ap += _ap_101(*_tp_points(wt[:, tp_rows], seen[:, tp_rows], n_l))
            total += np.where(n_l > 0, ap / len(rows), 0.0)
        out[s : s + step] = np.divide(total, present, out=np.zeros(r), where=present > 0)
    return out


def _drawn_up_to(w32: np.ndarray, where: np.ndarray, pos: np.ndarray, cols: int) -> np.ndarray:
    """(resamples x len(pos)): how many predictions each resample (image weights ``w32``) drew
    among those ranked 0..pos[k] (``where``: each ranked prediction's image). Per chunk of
    ``cols`` true positives, an (images x cols) table of per-image counts up to each, carried
    over from the chunk before, times the weights."""
    n = w32.shape[1]
    out = np.empty((len(w32), len(pos)))
    before, start = np.zeros(n, np.float32), 0
    for a in range(0, len(pos), cols):
        b = min(a + cols, len(pos))
        upto = pos[b - 1] + 1
        seg = np.searchsorted(pos[a:b], np.arange(start, upto))  # the first TP at or after
        per = np.bincount(where[start:upto] * (b - a) + seg, minlength=n * (b - a))
        table = before[:, None] + np.cumsum(per.reshape(n, b - a), axis=1, dtype=np.float32)
        out[:, a:b] = w32 @ table
        before, start = table[:, -1], upto
    return out


def _tp_points(wt: np.ndarray, at: np.ndarray, n_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision (resamples x 2 points per true positive) of one class at one IoU
    threshold, from each true positive's weight ``wt`` and the drawn predictions up to it
    ``at``: before each true positive, the last false positive at the previous recall (given
    the true positive's precision: its envelope is the same), then the true positive.
    Where no false positive came between, that point repeats the one before it."""
    tpc = np.cumsum(wt, axis=1)
    prec = np.divide(tpc, at, out=np.ones_like(tpc), where=at > 0)  # nothing drawn yet: 1
    rec = tpc / (np.where(n_l > 0, n_l, np.inf)[:, None] + 1e-16)  # absent class: 0, masked
    fp = at - tpc
    before_rec = np.concatenate([np.zeros((len(rec), 1)), rec[:, :-1]], axis=1)
    before_prec = np.concatenate([np.ones((len(prec), 1)), prec[:, :-1]], axis=1)
    gap = np.diff(fp, axis=1, prepend=0.0) > 0
    points_rec = np.stack([before_rec, rec], axis=2).reshape(len(rec), -1)
    points_prec = np.stack([np.where(gap, prec, before_prec), prec], axis=2)
    return points_rec, points_prec.reshape(len(rec), -1)


def _ap_101(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """ultralytics' ``compute_ap`` on every row of (curves x points) at once: the same
    sentinels, precision envelope and 101-point interpolation; one AP per row."""
    rows, width = recall.shape[0], recall.shape[1] + 3
    mrec = np.concatenate([np.zeros((rows, 1)), recall, recall[:, -1:], np.ones((rows, 1))], 1)
    mpre = np.concatenate([np.ones((rows, 1)), precision, np.zeros((rows, 2))], 1)
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre, 1), axis=1), 1)
    # np.interp on every row: rows shifted apart by 2 (recall is in [0, 1]) share one search
    x = np.linspace(0, 1, 101)
    shift = 2.0 * np.arange(rows)[:, None]
    xp, fp = (mrec + shift).ravel(), mpre.ravel()
    q = (x[None, :] + shift).ravel()
    start = np.repeat(np.arange(rows) * width, len(x))
    j = np.clip(np.searchsorted(xp, q, side="right") - 1, start, start + width - 2)
    span = xp[j + 1] - xp[j]
    frac = np.clip(np.divide(q - xp[j], span, out=np.zeros_like(q), where=span > 0), 0, 1)
    y = (fp[j] + frac * (fp[j + 1] - fp[j])).reshape(rows, len(x))
    return ((y[:, 1:] + y[:, :-1]) / 2 * np.diff(x)).sum(1)


def evaluate(
    model_path: Path, data_yaml: Path, settings: EvalSettings, backend: str = "onnxruntime"
) -> EvalResult:
    """Score ``model_path`` on ``settings.split`` of ``data_yaml``; an ONNX model on
    ``backend`` (onnxruntime, or openvino: the runtime that will run it); a ``.pt`` runs on
    torch (any backend but openvino, which runs ONNX files only)."""
    return evaluate_images(model_path, data_yaml, settings, backend)[0]


def evaluate_images(
    model_path: Path, data_yaml: Path, settings: EvalSettings, backend: str = "onnxruntime"
) -> tuple[EvalResult, ImageStats]:
    """:func:`evaluate`, plus the per-image statistics the mAP was computed from."""
    model_path, data_yaml = Path(model_path), Path(data_yaml)
    for p, what in ((model_path, "model"), (data_yaml, "dataset")):
        if not p.exists():
            raise DataError(f"{p}: {what} file not found")
    with tempfile.TemporaryDirectory(prefix="yeo-ir-") as ir:
        runs = model_path
        if backend == "openvino":
            if model_path.suffix != ".onnx":
                raise ValueError(f"{model_path}: OpenVINO scores ONNX files only")
            runs = openvino_ir(model_path, Path(ir))
        return _evaluate(model_path, runs, data_yaml, settings)


def openvino_ir(model: Path, dest: Path) -> Path:
    """``model`` (ONNX) as the OpenVINO IR folder ultralytics runs (``<stem>_openvino_model/``
    with the ONNX file's metadata beside it), read as the edge runtime reads the ONNX file
    (:func:`edge.engine.openvino_model`): no FP16 compression, the device's own inference
    precision at run time."""
    import openvino as ov
    import yaml

    from edge.engine import openvino_model

    folder = dest / f"{model.stem}_openvino_model"
    folder.mkdir(parents=True)
    xml = folder / f"{model.stem}.xml"
    ov.save_model(openvino_model(ov.Core(), model), xml, compress_to_fp16=False)
    (folder / "metadata.yaml").write_text(yaml.safe_dump(_onnx_props(model)))
    return folder


def _evaluate(
    model_path: Path, runs: Path, data_yaml: Path, settings: EvalSettings
) -> tuple[EvalResult, ImageStats]:
    """:func:`evaluate_images` of ``model_path`` as ``runs`` (itself, or its OpenVINO IR)."""
    configure_ultralytics()
    from ultralytics import YOLO

    model = YOLO(str(runs), task="detect")
    # a .pt runs where training ran (CUDA when there is one); ONNX work stays on the CPU
    device = settings.device if model_path.suffix == ".pt" else "cpu"
    seen: dict[str, object] = {}

    def keep_stats(validator) -> None:  # the validator clears its per-image lists at the end
        seen["stats"] = {k: list(v) for k, v in validator.metrics.stats.items()}
        seen["images"] = list(validator.dataloader.dataset.im_files)

    model.add_callback("on_val_batch_end", keep_stats)
    strides = raw_head_strides(_onnx_props(model_path)) if model_path.suffix == ".onnx" else None
    if strides:
        model.add_callback("on_val_start", lambda v: _decode_on_host(v, strides))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="yeo-val-") as tmp:
        m = model.val(
            data=str(data_yaml),
            imgsz=settings.imgsz,
            batch=settings.batch,
            conf=settings.conf,
            iou=settings.iou,
            split=settings.split,
            device=device,
            rect=False,
            plots=False,
            save_json=False,
            verbose=False,
            workers=0,
            project=tmp,
            name="val",
        )
    seconds = time.perf_counter() - start
    names = m.names
    per_class = {
        names[int(c)]: float(m.box.all_ap[i].mean()) for i, c in enumerate(m.box.ap_class_index)
    }
    stats = getattr(m, "nt_per_class", None)
    kept = seen.get("stats") or {k: [] for k in ("tp", "conf", "pred_cls", "target_cls")}
    images = ImageStats(
        images=[Path(f).name for f in seen.get("images", [])][: len(kept["tp"])],
        tp=kept["tp"],
        conf=kept["conf"],
        pred_cls=kept["pred_cls"],
        target_cls=kept["target_cls"],
    )
    result = EvalResult(
        model=str(model_path),
        format="openvino" if runs != model_path else model_path.suffix.lstrip(".") or "dir",
        precision=float(m.box.mp),
        recall=float(m.box.mr),
        map50=float(m.box.map50),
        map50_95=float(m.box.map),
        per_class_ap50_95=per_class,
        n_images=split_size(data_yaml, settings.split),
        n_instances=int(stats.sum()) if stats is not None else 0,
        speed_ms={k: float(v) for k, v in m.speed.items()},
        seconds=seconds,
        settings=settings,
    )
    return result, images


def _onnx_props(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _decode_on_host(validator, strides: list[int]) -> None:
    """A model cut at its head returns per-level maps: turn them into the in-graph layout with
    the edge runtime's own decode (:func:`edge.postprocess.raw_head_dense`) before
    ultralytics' NMS and matching, so a raw-head variant is scored through the code that
    ships with it."""
    import torch

    nms = validator.postprocess

    def postprocess(preds):
        parts = [p.cpu().numpy() for p in preds]
        dense = [
            raw_head_dense([p[i : i + 1] for p in parts], strides) for i in range(len(parts[0]))
        ]
        return nms(torch.from_numpy(np.concatenate(dense)))

    validator.postprocess = postprocess


def split_images(data_yaml: Path, split: str) -> list[Path]:
    """The images of ``split`` of a data.yaml (folders or list files), sorted."""
    from ultralytics.data.utils import check_det_dataset

    return entry_images(check_det_dataset(str(data_yaml)).get(split))


def entry_images(entry: str | list[str] | None) -> list[Path]:
    """The images of one split entry as ``check_det_dataset`` resolves it (folders or list
    files), sorted."""
    from ultralytics.data.utils import IMG_FORMATS

    paths = entry if isinstance(entry, list) else [entry] if entry else []
    images: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            images += [f for f in p.rglob("*") if f.suffix.lstrip(".").lower() in IMG_FORMATS]
        elif p.is_file():  # a list file: "./" lines beside it, others as written (ultralytics)
            lines = (line.strip() for line in p.read_text().splitlines())
            images += [p.parent / x[2:] if x.startswith("./") else Path(x) for x in lines if x]
    return sorted(images)


def split_size(data_yaml: Path, split: str) -> int:
    """Number of images in ``split`` of a data.yaml (folders or list files)."""
    return len(split_images(data_yaml, split))
