"""Host B's steps in the two-host test: ZenML steps run here on artifacts host A produced
(its choice, data version and dataset, found by name on the team stack's server), after A's
folder is gone. ``score_held_out`` scores every variant again from the variant model
artifacts the choice names; ``build_bundle`` builds and registers a bundle from them.

    python -m tests.netguard tests/host_b.py [hydra overrides of A's run]

With ``YEO_ZENML_URL`` set it connects to the team stack first (before ZenML is imported).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    from yeo import env, team

    _ws = env.configure()
    if os.environ.get("YEO_ZENML_URL"):
        team.connect(team.load(_ws.state), _ws.state)

from zenml import pipeline

from steps.build_bundle import build_bundle
from steps.score_held_out import score_held_out
from yeo.evaluation import EvalConfig
from yeo.optimize.settings import OptimizeConfig


@pipeline(enable_cache=False)
def steps_on_a_artifacts(eval_cfg: EvalConfig, imgsz: int, optimize: OptimizeConfig) -> None:
    from zenml.client import Client

    c = Client()
    choice, data_version, dataset = (
        c.get_artifact_version(name) for name in ("choice", "data_version", "dataset")
    )
    scored = score_held_out(choice, dataset, eval_cfg, imgsz, "cpu")
    build_bundle(scored, data_version, dataset, optimize)


if __name__ == "__main__":
    from yeo.cli import compose_config
    from yeo.config import RunConfig

    cfg = RunConfig.parse(compose_config(sys.argv[1:]))
    steps_on_a_artifacts(cfg.eval, cfg.train.imgsz, cfg.optimize)
