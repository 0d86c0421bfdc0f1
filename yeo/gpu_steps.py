"""``stack.gpu_steps``: the ZenML settings (resources, Docker image, step operator) of the steps
that train, built and so validated once at the CLI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from yeo.errors import ConfigError

GPU_STEPS = ("train_model", "prune_model")  # the steps that train: a GPU pays there


class GpuSteps(BaseModel):
    """``stack.gpu_steps``: where and on what the training steps run (ZenML settings)."""

    model_config = {"extra": "forbid"}
    step_operator: str | None = None
    resources: dict[str, Any] = {}
    docker: dict[str, Any] = {}


def gpu_step_options(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """ZenML step configuration for the GPU steps: ``ResourceSettings``, ``DockerSettings``
    and the step operator, built (and so validated) from ``stack.gpu_steps``; {} for none."""
    if not cfg:
        return {}
    from pydantic import ValidationError
    from zenml.config import DockerSettings, ResourceSettings

    def build(section: str, cls: Any, values: Any) -> Any:
        try:
            return cls(**values)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join([section, *(str(x) for x in first["loc"])]).strip(".")
            raise ConfigError(f"stack.gpu_steps: {where}: {first['msg']}") from None

    g = build("", GpuSteps, cfg)
    settings = {
        "resources": build("resources", ResourceSettings, g.resources),
        "docker": build("docker", DockerSettings, g.docker),
    }
    return {"settings": settings} | ({"step_operator": g.step_operator} if g.step_operator else {})
