#!/usr/bin/env python
"""YOLO Edge Optimizer command line: ``python run.py --pipeline NAME [key=value ...]``.

``--pipeline`` picks the ZenML pipeline; everything after it is a Hydra override of ``conf/``
(composed and validated into typed config groups here and only here, then passed down).
"""

from __future__ import annotations

import argparse
import logging
import sys

from yeo import env

WS = env.configure()  # before ZenML, MLflow, DVC or ultralytics are imported

from yeo.cli import PIPELINES, UserErrorFilter, compose_config  # noqa: E402
from yeo.config import RunConfig  # noqa: E402
from yeo.errors import ConfigError, UserError  # noqa: E402


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    listing = "\n".join(f"  {name:10s} {p.help}" for name, p in PIPELINES.items())
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="YOLO Edge Optimizer: detection dataset -> benchmarked INT8 ONNX edge bundle.",
        epilog=f"pipelines:\n{listing}\n\nexamples:\n"
        "  python run.py --pipeline data\n"
        "  python run.py --pipeline data data=voc data.path=../shared/datasets/neu-det\n"
        "  python run.py --pipeline train train.epochs=50\n"
        "  python run.py --pipeline tune tune.n_trials=20 && python run.py --pipeline train "
        "train=tuned",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pipeline",
        required=True,
        choices=list(PIPELINES),
        metavar="NAME",
        help="which pipeline to run (see below)",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, key=value")
    args, unknown = parser.parse_known_args(argv)
    return args, list(args.overrides) + unknown


def _log_to_console(*names: str) -> None:
    """INFO from our own modules (ZenML already prints its own, through its handler)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    pipeline = PIPELINES[args.pipeline]
    _log_to_console("yeo", "steps", "pipelines")
    try:
        cfg = RunConfig.parse(compose_config(overrides))  # validated once, typed
        if cfg.stack["name"] == "team":  # before ZenML is imported
            from yeo import gpu_steps, team

            team.connect(team.load(WS.state), WS.state)
            gpu_steps.gpu_step_options(cfg.stack.get("gpu_steps"))  # checked before any step
        pipeline.check(cfg)
    except ConfigError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return 2
    quiet = UserErrorFilter.install()
    try:
        run = pipeline.run(cfg)
    except UserError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return e.exit_code
    except RuntimeError:
        if quiet.last is None:
            raise
        print(f"run.py: error: {quiet.last}", file=sys.stderr)
        return quiet.exit_code
    print("\n" + pipeline.summarize(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
