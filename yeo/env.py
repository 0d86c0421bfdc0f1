"""The one module that owns the process environment.

Import and call :func:`configure` before ZenML, MLflow, DVC or ultralytics are imported: it
keeps their state inside the project workspace (ignored by git) and switches off every
analytics, telemetry, update check, settings sync and auto-install path that reaches for the
network. ``YEO_HOME`` moves the workspace (tests point it at a temporary folder).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Workspace:
    """Where generated state lives; every path is absolute."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / ".state"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def relative(self, path: Path | str) -> str:
        """``path`` as an artifact records it: relative to the workspace, so that no artifact
        holds one machine's absolute paths."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    @property
    def mlflow_db(self) -> Path:
        return self.state / "mlflow" / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.state / "mlflow" / "artifacts"

    @property
    def mlflow_uri(self) -> str:
        """A team's tracking server (``YEO_MLFLOW_URI``, see yeo.team) or SQLite here."""
        return os.environ.get("YEO_MLFLOW_URI") or f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_is_local(self) -> bool:
        return self.mlflow_uri.startswith("sqlite:")

    @property
    def ultralytics_dir(self) -> Path:
        return self.state / "ultralytics"

    @property
    def dvc_remote(self) -> Path:
        return self.state / "dvc-remote"


def workspace() -> Workspace:
    """The active workspace: ``$YEO_HOME`` or the code checkout itself."""
    return Workspace(Path(os.environ.get("YEO_HOME", CODE_ROOT)).resolve())


_OFFLINE_ENV = {
    # ZenML
    "ZENML_ANALYTICS_OPT_IN": "false",
    "ZENML_DISABLE_INTERACTIVE_INPUT": "true",
    "ZENML_AUTO_OPEN_DASHBOARD": "false",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "ZENML_LOGGING_COLORS_DISABLED": "true",
    "ZENML_DISABLE_STEP_LOGS_STORAGE": "false",
    # MLflow
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DO_NOT_TRACK": "1",
    # ultralytics
    "YOLO_AUTOINSTALL": "false",
    "YOLO_VERBOSE": "true",
    # DVC
    "DVC_NO_ANALYTICS": "1",
    "DVC_NO_UPDATE_CHECK": "1",
    # Great Expectations
    "GX_ANALYTICS_ENABLED": "false",
    # Hugging Face (pulled in transitively by some integrations)
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # pip, should anything try to install at run time
    "PIP_NO_INDEX": "1",
}

# How long an idle OpenMP thread of torch (GNU libgomp) spins before it sleeps; read once, when
# torch loads. The default (300,000) assumes the process owns its cores. A Jupyter kernel, or a
# run from another terminal, is its own session and so its own scheduler group (Linux
# autogroup): a `nice 15` job in another session still takes half the CPU, and with both
# threads spinning at every barrier the tiny notebook training went from 0.87 to 58 s per
# epoch. At 10,000 it cost nothing measurable alone and 4.9 s per epoch beside that neighbour
# (PASSIVE, no spin: 2.2x slower alone). Measured on 2 cores; figures in docs/results.md.
OMP_SPIN = {"GOMP_SPINCOUNT": "10000"}


def is_offline() -> bool:
    """Offline is the default; ``YEO_OFFLINE=0`` allows hub downloads (weights, COCO128)."""
    return os.environ.get("YEO_OFFLINE", "1").lower() not in ("0", "false", "no")


def configure() -> Workspace:
    """Point every library's state into the workspace and switch off network paths.

    Idempotent; returns the active workspace. Values already set by the caller win, except
    the state locations, which always follow the workspace so that tests stay isolated.
    """
    ws = workspace()
    for key, value in (_OFFLINE_ENV | OMP_SPIN).items():
        os.environ.setdefault(key, value)
    zen = ws.state / "zenml"
    os.environ["ZENML_CONFIG_PATH"] = str(zen / "config")
    os.environ["ZENML_LOCAL_STORES_PATH"] = str(zen / "local_stores")
    os.environ["ZENML_REPOSITORY_PATH"] = str(ws.root)
    os.environ["MLFLOW_TRACKING_URI"] = ws.mlflow_uri
    os.environ["MLFLOW_REGISTRY_URI"] = ws.mlflow_uri
    os.environ["YOLO_CONFIG_DIR"] = str(ws.ultralytics_dir)
    # Offline unless the user says otherwise (YEO_OFFLINE=0 lets ultralytics download).
    os.environ["YOLO_OFFLINE"] = "0" if not is_offline() else "1"
    os.environ["DVC_SITE_CACHE_DIR"] = str(ws.state / "dvc-site")
    os.environ["DVC_GLOBAL_CONFIG_DIR"] = str(ws.state / "dvc-global")
    os.environ["DVC_SYSTEM_CONFIG_DIR"] = str(ws.state / "dvc-system")
    os.environ["MPLCONFIGDIR"] = str(ws.state / "matplotlib")
    for d in (zen, ws.mlflow_artifacts, ws.ultralytics_dir, ws.state / "matplotlib"):
        d.mkdir(parents=True, exist_ok=True)
    _install_ultralytics_fonts(ws.ultralytics_dir / "Ultralytics")
    for noisy in ("great_expectations", "alembic", "mlflow.store.db.utils", "dvc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return ws


def _install_ultralytics_fonts(font_dir: Path) -> None:
    """ultralytics downloads Arial.ttf for plots even with plots=False: give it a local TTF."""
    targets = [font_dir / "Arial.ttf", font_dir / "Arial.Unicode.ttf"]
    if all(t.exists() for t in targets):
        return
    try:
        import matplotlib

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    except ImportError:  # pragma: no cover - matplotlib is a dependency of ultralytics
        return
    font_dir.mkdir(parents=True, exist_ok=True)
    for t in targets:
        if not t.exists():
            shutil.copyfile(src, t)


def disable_openvino_telemetry() -> None:
    """OpenVINO's converter sends usage events to Google Analytics unless a consent file says
    no (it counts a missing file as consent). Keep a declined one inside the workspace and point
    the checker at it; NNCF's own telemetry goes off with NNCF_CI. No-op without openvino."""
    os.environ.setdefault("NNCF_CI", "1")
    try:
        from openvino_telemetry.utils.opt_in_checker import OptInChecker
    except ImportError:
        return
    base = workspace().state / "openvino"
    consent = base / OptInChecker.consent_file_subdirectory() / "openvino_telemetry"
    consent.parent.mkdir(parents=True, exist_ok=True)
    consent.write_text("0")  # the value `opt_in_out --opt_out` writes
    OptInChecker.consent_file_base_dir = staticmethod(lambda: str(base))


def configure_ultralytics() -> None:
    """Import-time fixes for ultralytics; call before using it (idempotent).

    Persists settings that keep it offline and inside the workspace: no settings sync and no
    logger integrations (its own MLflow callback would otherwise reset the tracking URI and end
    the active run inside our steps). Also disarms its global ``PIL.Image.open`` patch, which
    on any unidentifiable image tries to pip-install ``pi-heif`` and then fails with
    ModuleNotFoundError instead of PIL's own error. And lets CPU training use every core
    (``YEO_TORCH_THREADS`` overrides).
    """
    from ultralytics.utils import SETTINGS, patches, torch_utils

    patches._pil_plugins_registered = True  # plain Image.open from now on
    disable_openvino_telemetry()  # ultralytics' OpenVINO export imports openvino
    # select_device() sets torch to cpu_count - 1 threads: one of two cores on a 2-core box
    torch_utils.NUM_THREADS = int(os.environ.get("YEO_TORCH_THREADS", os.cpu_count() or 1))

    ws = workspace()
    SETTINGS.update(
        {
            "sync": False,
            "clearml": False,
            "comet": False,
            "dvc": False,
            "mlflow": False,
            "raytune": False,
            "tensorboard": False,
            "wandb": False,
            "vscode_msg": False,
            "openvino_msg": False,
            "runs_dir": str(ws.state / "ultralytics-runs"),
            "weights_dir": str(ws.state / "weights"),
            "datasets_dir": str(ws.data / "external"),
        }
    )
