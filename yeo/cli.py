"""The pipelines ``run.py`` offers: Hydra composition, config checks, launch, summaries."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yeo.config import RunConfig
from yeo.env import CODE_ROOT, workspace
from yeo.errors import ConfigError, UserError

log = logging.getLogger(__name__)


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """Compose ``conf/`` with Hydra overrides; any mistake becomes a one-line ConfigError.

    ``<workspace>/conf`` is searched too, for generated configs such as ``train/tuned.yaml``.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    extra = workspace().root / "conf"
    use_extra = extra != CODE_ROOT / "conf" and extra.is_dir()
    search = [f"hydra.searchpath=[file://{extra}]"] if use_extra else []
    try:
        with initialize_config_dir(str(CODE_ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=search + overrides)
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        raise ConfigError(" ".join(str(e).split())) from None


# --------------------------------------------------------------------------- checks
# The config is validated into typed groups once (:class:`yeo.config.RunConfig`); a check
# adds what a valid config still needs from this machine (a package, a file, a reader).


def check_data(cfg: RunConfig) -> None:
    from yeo.data import settings

    settings.check(cfg.data)


def check_train(cfg: RunConfig) -> None:
    check_data(cfg)
    if cfg.tracking.get("wandb"):
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ConfigError(
                "tracking.wandb=true needs the wandb package: pip install wandb"
            ) from None


def check_optimize(cfg: RunConfig) -> None:
    from yeo.optimize import settings

    check_train(cfg)
    settings.check(cfg.optimize)


def check_benchmark(cfg: RunConfig) -> None:
    from yeo.benchmark import check

    check(cfg.benchmark)


def serve_bundle(serve: dict[str, Any]) -> Path:
    """``serve.bundle`` or the newest bundle folder in ``<workspace>/edge/bundles``: named
    ``<name>-v<N>`` (a killed build's hidden ``.<name>-vN.tmp-*`` folder is never one)."""
    if serve["bundle"]:
        return Path(serve["bundle"])
    found = sorted(
        (
            p
            for p in (workspace().root / "edge" / "bundles").glob("*-v*")
            if p.is_dir() and re.fullmatch(r"[^.].*-v\d+", p.name)
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise ConfigError(
            "no bundle in edge/bundles: run `python run.py --pipeline optimize` "
            "or pass serve.bundle=PATH"
        )
    return found[-1]


def check_serve(cfg: RunConfig) -> None:
    s = cfg.serve
    bundle = serve_bundle(s)
    if not (bundle / "metadata.json").is_file():
        raise ConfigError(f"serve.bundle: {bundle} is not a bundle (no metadata.json)")
    if not 0 < s["port"] < 65536 or s["threads"] < 1 or (s["workers"] or 1) < 1:
        raise ConfigError("serve.port must be 1-65535, serve.threads and serve.workers >= 1")
    if s["max_bytes"] < 1 or s["max_pixels"] < 1:
        raise ConfigError("serve.max_bytes and serve.max_pixels must be >= 1")


def check_fetch(cfg: RunConfig) -> None:
    f = cfg.fetch
    if f["threads"] < 1 or f["runs"] < 1:
        raise ConfigError("fetch.threads and fetch.runs must be >= 1")


def registry_name(cfg: RunConfig) -> str:
    return cfg.tracking.get("registry_name") or f"yolov8n-{cfg.data.name}"


# --------------------------------------------------------------------------- runs


def run_data(cfg: RunConfig) -> Any:
    from pipelines.data import data_pipeline

    return data_pipeline(data=cfg.data)


def on_stack(pipeline: Any, cfg: RunConfig, steps: tuple[str, ...]) -> Any:
    """The pipeline with ``stack.gpu_steps`` (resources, Docker image, step operator) on its
    training steps; unchanged when the stack sets none."""
    from yeo.gpu_steps import GPU_STEPS, gpu_step_options

    opts = gpu_step_options(cfg.stack.get("gpu_steps"))
    if not opts:
        return pipeline
    return pipeline.with_options(step_configurations={s: opts for s in steps if s in GPU_STEPS})


def run_train(cfg: RunConfig) -> Any:
    from pipelines.train import train_pipeline

    return on_stack(train_pipeline, cfg, ("train_model",))(
        data=cfg.data,
        train=cfg.train,
        model=cfg.model,
        eval_cfg=cfg.eval,
        registry_name=registry_name(cfg),
        wandb=bool(cfg.tracking.get("wandb")),
    )


def run_tune(cfg: RunConfig) -> Any:
    from pipelines.tune import tune_pipeline

    return tune_pipeline(data=cfg.data, train=cfg.train, model=cfg.model, tune=cfg.tune)


def optimize_imgsz(cfg: RunConfig) -> tuple[int, str | None]:
    """The size the optimize run works at, and what to tell the user about it: ``optimize.imgsz``
    when set; else an imported base model's own training size (a model trained at 640 is not
    judged and shipped at 256 without a word); else ``train.imgsz``."""
    from yeo.registry import resolve_weights, trained_imgsz

    opt, size = cfg.optimize, cfg.train.imgsz
    trained = trained_imgsz(resolve_weights(opt.base_model)) if opt.base_model else None
    if opt.imgsz:
        note = (
            f"optimize.imgsz={opt.imgsz}: the base model was trained at {trained} px"
            if trained and trained != opt.imgsz
            else None
        )
        return opt.imgsz, note
    if trained and trained != size:
        return trained, (
            f"optimize.base_model was trained at {trained} px: judged, pruned, exported and "
            f"bundled at {trained} (train.imgsz={size} is for training here; optimize.imgsz "
            "sets another)"
        )
    return size, None


def run_optimize(cfg: RunConfig) -> Any:
    from zenml import Model

    from pipelines.optimize import optimize_pipeline

    opt = cfg.optimize
    imgsz, note = optimize_imgsz(cfg)
    if note:
        log.warning(note)
    opt.sizes_below(imgsz)  # a size axis that cannot run is refused before any work
    steps = ("prune_model",) if opt.prune.enabled else ()
    steps += () if opt.base_model else ("train_model",)
    # a ZenML Model version per run: the bundle and every variant linked to it, by name
    name = opt.bundle.name or f"yolov8n-{cfg.data.name}"
    pipeline = optimize_pipeline.with_options(model=Model(name=f"{name}-edge"))
    return on_stack(pipeline, cfg, steps)(
        data=cfg.data,
        train=cfg.train.with_overrides(imgsz=imgsz),
        model=cfg.model,
        eval_cfg=cfg.eval,
        optimize=cfg.optimize,
    )


def run_benchmark(cfg: RunConfig) -> Any:
    from pipelines.benchmark import benchmark_pipeline

    return benchmark_pipeline(benchmark=cfg.benchmark)


def run_fetch(cfg: RunConfig) -> Any:
    """Not a ZenML pipeline: reads an artifact another run wrote, measures it here."""
    from yeo import handoff

    f = cfg.fetch
    out = workspace().root / f["out"]
    return handoff.run(out, f["version"], f["threads"], f["runs"])


def run_serve(cfg: RunConfig) -> str:
    """Not a ZenML pipeline: a long-running server, until Ctrl-C."""
    from edge.serve import Limits, serve

    s = cfg.serve
    bundle = serve_bundle(s)
    serve(
        bundle,
        s["host"],
        s["port"],
        s["threads"],
        s["workers"],
        Limits(s["max_bytes"], s["max_pixels"]),
    )
    return str(bundle)


# --------------------------------------------------------------------------- summaries


def _output(run: Any, step: str, name: str) -> Any:
    return run.steps[step].outputs[name][0].load()


def summarize_data(run: Any) -> str:
    from yeo.data.settings import report_dir
    from yeo.data.validation import intake_lines

    out = _output(run, "version_dataset", "data_version")
    intake = intake_lines(
        _output(run, "convert_annotations", "source_dataset"),
        _output(run, "validate_dataset", "validation_report"),
    )
    return (
        f"dataset      {out.name}: {out.n_images} images, {out.n_boxes} boxes, "
        f"{len(out.names)} classes\n"
        + "".join(f"{line}\n" for line in intake)
        + f"processed    {workspace().root / out.location}\n"
        f"data.yaml    {workspace().root / out.location / 'data.yaml'}\n"
        f"report       {report_dir(workspace(), out.name) / 'validation.md'}\n"
        f"dvc hash     {out.dvc_hash} ({out.tracked_by})"
    )


def summarize_train(run: Any) -> str:
    summary = _output(run, "train_model", "train_summary")
    result = _output(run, "evaluate_model", "eval_result")
    registered = _output(run, "register_model", "registered_model")
    return (
        f"trained      {summary.epochs_run} epochs in {summary.seconds:.0f} s "
        f"({summary.seconds_per_epoch:.1f} s/epoch), imgsz {summary.imgsz}\n"
        f"val          mAP50 {result.map50:.3f}  mAP50-95 {result.map50_95:.3f}  "
        f"P {result.precision:.3f}  R {result.recall:.3f}\n"
        f"weights      {workspace().root / summary.weights}\n"
        f"registered   {registered.uri}\n"
        f"mlflow run   {summary.mlflow_run_id}  (data {summary.data_dvc_hash})"
    )


def summarize_tune(run: Any) -> str:
    res = _output(run, "tune_hyperparameters", "tune_result")
    return (
        f"study        {res.study} ({res.storage}): {res.n_complete} complete, "
        f"{res.n_pruned} pruned, {res.n_failed} failed\n"
        f"workers      {res.workers} here; trials ran in processes {res.worker_pids}\n"
        f"best         mAP50-95 {res.best_value:.4f} with {res.best_params}\n"
        f"config       {res.config_file}  (use: python run.py --pipeline train train=tuned)\n"
        f"plots        {', '.join(res.plots)}"
    )


def summarize_optimize(run: Any) -> str:
    from yeo.optimize.variants import markdown_table

    sel = _output(run, "score_held_out", "selection")
    folder = workspace().outputs / "optimize" / run.name
    lines = [
        f"{markdown_table(sel)}\n",
        f"selected     {sel.selected} (on val): {sel.reason}",
        f"held out     {sel.held_out.verdict}",
        "backends     " + "; ".join(f"{k} {v}" for k, v in sel.backends.items()),
        f"report       {folder / 'report.html'}",
    ]
    if "build_bundle" in run.steps:
        b = _output(run, "build_bundle", "bundle")
        path = workspace().root / b.path
        lines += [
            f"bundle       {path} (+ .tar.gz)",
            f"registered   {b.registered} (alias edge-candidate)",
            f"verified     {b.verify}",
            f"edge         model p50 {b.benchmark_p50_ms:.2f} ms, end to end "
            f"{b.end_to_end_p50_ms:.2f} ms (python -m edge.benchmark {path})",
        ]
        if b.arm64:
            lines.append(f"arm64        {b.arm64}")
    return "\n".join(lines)


def summarize_benchmark(run: Any) -> str:
    return str(_output(run, "benchmark_variants", "benchmark_table"))


def summarize_fetch(h: Any) -> str:
    return (
        f"fetched      {h.artifact_uri} (version {h.artifact_version})\n"
        f"into         {h.path}\n"
        f"verified     {h.verify}\n"
        f"here         model p50 {h.model_p50_ms:.2f} ms, end to end {h.end_to_end_p50_ms:.2f} ms "
        f"on {h.cpu} ({' '.join(h.cpu_flags) or 'no SIMD flags found'})\n"
        f"mlflow run   {h.mlflow_run_id}"
    )


def summarize_serve(bundle: str) -> str:
    return f"server stopped ({bundle})"


@dataclass(frozen=True)
class Pipeline:
    help: str
    check: Callable[[RunConfig], None]  # raises ConfigError before anything starts
    run: Callable[[RunConfig], Any]
    summarize: Callable[[Any], str]


PIPELINES: dict[str, Pipeline] = {
    "data": Pipeline(
        "ingest, convert, ETL, validate (Great Expectations), DVC-version a dataset",
        check_data,
        run_data,
        summarize_data,
    ),
    "train": Pipeline(
        "data (cached) -> train YOLOv8n -> evaluate -> register in MLflow",
        check_train,
        run_train,
        summarize_train,
    ),
    "optimize": Pipeline(
        "data -> train (cached) -> prune + fine-tune -> ONNX -> INT8 in budget -> select",
        check_optimize,
        run_optimize,
        summarize_optimize,
    ),
    "benchmark": Pipeline(
        "latest optimize run: every variant + ultralytics/OpenVINO peers, interleaved timing",
        check_benchmark,
        run_benchmark,
        summarize_benchmark,
    ),
    "serve": Pipeline(
        "FastAPI over the newest (or serve.bundle=PATH) verified edge bundle, until Ctrl-C",
        check_serve,
        run_serve,
        summarize_serve,
    ),
    "fetch": Pipeline(
        "the newest edge_bundle artifact (any machine's, stack=team) verified + timed here",
        check_fetch,
        run_fetch,
        summarize_fetch,
    ),
    "tune": Pipeline(
        "Optuna study over lr, momentum/decay, augmentation; writes conf train=tuned",
        check_train,  # tune needs nothing more than train
        run_tune,
        summarize_tune,
    ),
}


class UserErrorFilter(logging.Filter):
    """Drops tracebacks of :class:`UserError` from log output and remembers the message.

    ZenML logs a failed step with its traceback; for bad input the user needs one line.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None
        self.exit_code = 1

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, UserError):
            self.last = str(exc)
            self.exit_code = exc.exit_code
            record.exc_info = None
            record.exc_text = None
        return True

    @classmethod
    def install(cls) -> UserErrorFilter:
        import zenml  # noqa: F401  (sets up ZenML's handlers first)

        f = cls()
        for name in ("", "zenml"):
            for handler in logging.getLogger(name).handlers:
                handler.addFilter(f)
        return f


def run_pipeline(name: str, overrides: list[str] | None = None) -> Any:
    """Compose, check and run one pipeline, as ``run.py`` does (for notebooks and scripts)."""
    from zenml.utils import source_utils

    # in a notebook there is no main module file for ZenML to find the code from
    source_utils.set_custom_source_root(str(CODE_ROOT))
    cfg = RunConfig.parse(compose_config(overrides or []))
    PIPELINES[name].check(cfg)
    return PIPELINES[name].run(cfg)
