"""The ``benchmark`` group, apart from :mod:`yeo.benchmark` (which loads the runtimes), so that
parsing a config imports no runtime."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from yeo.errors import ConfigError
from yeo.group import Group

PEERS = ("ultralytics_int8", "openvino")


class BenchmarkConfig(Group):
    """The ``benchmark`` group: which optimize run, how long, against which peers."""

    run: str | None = None  # outputs/optimize/<run>; None: the latest
    rounds: int = Field(5, ge=1)
    runs: int = Field(30, ge=1)
    threads: int = Field(2, ge=1)
    imgsz: int | None = None  # another size: every variant rebuilt from its weights
    peers: list[str] = Field(default_factory=lambda: list(PEERS))

    def model_post_init(self, _: Any) -> None:
        unknown = [p for p in self.peers if p not in PEERS]
        if unknown:
            raise ConfigError(f"benchmark.peers: unknown {unknown}; known: {list(PEERS)}")
        if self.imgsz is not None and (self.imgsz < 32 or self.imgsz % 32):
            raise ConfigError(
                f"benchmark.imgsz must be a multiple of 32 (or null), got {self.imgsz}"
            )
