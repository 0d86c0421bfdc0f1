"""Helpers for ``run.py``: Hydra composition, quiet user errors, result summaries."""

from __future__ import annotations

import logging
from typing import Any

from yeo.env import CODE_ROOT
from yeo.errors import ConfigError, UserError


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """Compose ``conf/`` with Hydra overrides; any mistake becomes a one-line ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(CODE_ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        msg = " ".join(str(e).split())
        raise ConfigError(msg) from None


class UserErrorFilter(logging.Filter):
    """Drops tracebacks of :class:`UserError` from log output and remembers the message.

    ZenML logs a failed step with its traceback; for bad input the user needs one line.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, UserError):
            self.last = str(exc)
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


def format_result(pipeline: str, result: Any) -> str:
    """A short summary of what a pipeline produced, read back from its ZenML run."""
    try:
        out = result.steps["version_dataset"].outputs["data_version"][0].load()
    except (AttributeError, KeyError, IndexError):
        return f"{pipeline}: finished"
    return (
        f"\ndataset      {out.name}: {out.n_images} images, {out.n_boxes} boxes, "
        f"{len(out.names)} classes\n"
        f"processed    {out.path}\n"
        f"data.yaml    {out.data_yaml}\n"
        f"report       {_report_path(out.name)}\n"
        f"dvc hash     {out.dvc_hash} ({out.tracked_by})"
    )


def _report_path(name: str) -> str:
    from yeo.data.settings import report_dir
    from yeo.env import workspace

    return str(report_dir(workspace(), name) / "validation.md")


__all__ = ["ConfigError", "UserError", "UserErrorFilter", "compose_config", "format_result"]
