"""The config is validated once, at the CLI, into typed groups that steps take as they are."""

from __future__ import annotations

import importlib
import inspect
import typing
from pathlib import Path

import pytest

from tests.conftest import CODE_ROOT, run_cli, yaml_load
from yeo.cli import compose_config
from yeo.config import RunConfig
from yeo.errors import ConfigError


def test_every_group_is_typed_and_round_trips() -> None:
    cfg = RunConfig.parse(compose_config([]))
    for name in ("data", "train", "model", "eval", "optimize", "tune", "benchmark"):
        group = getattr(cfg, name)
        assert type(group).parse(name, group.model_dump()) == group  # as ZenML stores it
    assert cfg.optimize.prune.ratio == 0.5 and cfg.optimize.quant.recipe_list()
    with pytest.raises(ConfigError, match=r"optimize: unknown keys \['prune\.ratioo'\]"):
        RunConfig.parse(compose_config(["+optimize.prune.ratioo=0.5"]))
    with pytest.raises(ConfigError, match=r"train\.epochs: Input should be a valid integer"):
        RunConfig.parse(compose_config(["train.epochs=many"]))


def test_a_wrong_type_stops_run_py_in_one_line() -> None:
    out = run_cli("--pipeline", "optimize", "optimize.threads=two")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "run.py: error: optimize.threads: Input should be a valid integer, unable to parse "
        "string as an integer (got 'two')"
    ]


def test_no_step_takes_an_untyped_config_blob() -> None:
    """Config groups reach steps as typed models; a dict parameter is left only for the
    report's plain copy of the whole config."""
    blobs, seen = [], 0
    allowed = {("report_optimize", "config")}
    for path in sorted((CODE_ROOT / "steps").glob("*.py")):
        module = importlib.import_module(f"steps.{path.stem}")
        for name, obj in vars(module).items():
            entry = getattr(obj, "entrypoint", None)
            if entry is None or obj.__module__ != module.__name__:
                continue
            seen += 1
            hints = typing.get_type_hints(entry)
            for param in inspect.signature(entry).parameters:
                if typing.get_origin(hints.get(param)) is dict and (name, param) not in allowed:
                    blobs.append(f"{name}({param})")
    assert seen >= 19 and not blobs, (seen, blobs)


def test_an_imported_model_is_judged_at_the_size_it_was_trained_at(trained_model: Path) -> None:
    """The session model was trained at 128 px; the default train.imgsz is 256."""
    from yeo.cli import optimize_imgsz

    def size(*overrides: str) -> tuple[int, str | None]:
        return optimize_imgsz(RunConfig.parse(compose_config(list(overrides))))

    assert size() == (256, None)  # trained here: train.imgsz
    got, note = size(f"optimize.base_model={trained_model}")
    assert got == 128 and note.startswith("optimize.base_model was trained at 128 px")
    got, note = size(f"optimize.base_model={trained_model}", "optimize.imgsz=160")
    assert got == 160 and note == "optimize.imgsz=160: the base model was trained at 128 px"
    assert size(f"optimize.base_model={trained_model}", "train.imgsz=128") == (128, None)
    with pytest.raises(ConfigError, match=r"optimize\.imgsz: Input should be a multiple of 32"):
        RunConfig.parse(compose_config(["optimize.imgsz=100"]))


def test_the_size_axis_is_refused_at_the_cli_when_it_cannot_run(trained_model: Path) -> None:
    """optimize.sizes: distinct multiples of 32, below the size the base is judged at."""
    from yeo.cli import optimize_imgsz

    def parse(*overrides: str) -> RunConfig:
        return RunConfig.parse(compose_config(list(overrides)))

    assert parse().optimize.sizes == []  # off by default: the default run's cost stays put
    cfg = parse("optimize.sizes=[192,224]")
    assert cfg.optimize.sizes_below(optimize_imgsz(cfg)[0]) == [224, 192]  # largest first
    for bad in ("[200]", "[224,224]", "[0]"):
        with pytest.raises(ConfigError, match=r"optimize\.sizes: .*distinct multiples of 32"):
            parse(f"optimize.sizes={bad}")
    # the imported model is judged at 128 px: 160 is not a smaller input
    cfg = parse(f"optimize.base_model={trained_model}", "optimize.sizes=[160,96]")
    with pytest.raises(ConfigError, match=r"\[160\] not below the 128 px the base is judged at"):
        cfg.optimize.sizes_below(optimize_imgsz(cfg)[0])


def test_every_optimize_setting_can_be_overridden_from_the_cli() -> None:
    """Hydra refuses an override of a key its yaml lacks: every typed field is in the yaml."""
    from yeo.group import Group
    from yeo.optimize.settings import OptimizeConfig

    def missing(model: type[Group], yaml: dict, prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            if name not in yaml:
                out.append(prefix + name)
            elif isinstance(field.annotation, type) and issubclass(field.annotation, Group):
                out += missing(field.annotation, yaml[name], f"{prefix}{name}.")
        return out

    conf = yaml_load(CODE_ROOT / "conf" / "optimize" / "default.yaml")
    assert missing(OptimizeConfig, conf, "optimize.") == []
    cfg = RunConfig.parse(compose_config(["optimize.prune.control=false", "optimize.sizes=[224]"]))
    assert cfg.optimize.prune.control is False and cfg.optimize.sizes == [224]


def test_the_nncf_variants_follow_openvino_and_are_refused_without_it() -> None:
    """optimize.quant.nncf: auto builds them where OpenVINO is on the axis and NNCF installed;
    on is refused at the CLI, in one line, where they cannot be built."""
    from yeo.optimize.settings import check, use_nncf

    def parse(*overrides: str):
        return RunConfig.parse(compose_config(list(overrides))).optimize

    assert use_nncf(parse())  # make install installs both
    assert not use_nncf(parse("optimize.openvino=off"))
    assert not use_nncf(parse("optimize.quant.enabled=false"))
    assert not use_nncf(parse("optimize.quant.nncf=off"))
    with pytest.raises(ConfigError, match=r"optimize\.quant\.nncf=on needs OpenVINO on the"):
        check(parse("optimize.quant.nncf=on", "optimize.openvino=off"))
    out = run_cli("--pipeline", "optimize", "optimize.quant.nncf=maybe")
    assert out.returncode == 2 and "optimize.quant.nncf: Input should be 'auto', 'on' or 'off'" in (
        out.stderr
    )
