"""Training: repeatable on CPU, the pruned-architecture-free basics, offline pipeline run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import TINY_TRAIN, run_cli
from yeo.errors import ConfigError
from yeo.train import trainer
from yeo.train.config import ModelConfig, TrainConfig


def test_two_runs_with_the_same_config_match(tiny_data: Path, tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict(TINY_TRAIN | {"epochs": 2})
    a = trainer.train(tiny_data, cfg, ModelConfig(), tmp_path / "a")
    b = trainer.train(tiny_data, cfg, ModelConfig(), tmp_path / "b")
    assert a.epochs_run == b.epochs_run == 2
    for ha, hb in zip(a.history, b.history, strict=True):
        assert ha["metrics/mAP50-95"] == pytest.approx(hb["metrics/mAP50-95"], abs=5e-4)
        assert ha["train/box_loss"] == pytest.approx(hb["train/box_loss"], abs=1e-4)
        assert ha["train/cls_loss"] == pytest.approx(hb["train/cls_loss"], abs=1e-4)
    assert a.best.is_file() and a.last.is_file()


def test_epochs_validate_on_the_monitor_subset_and_the_evaluator_on_all_of_val(
    tiny_data: Path, tmp_path: Path
) -> None:
    """train.monitor_images: each epoch's validation (training and fine-tuning) sees that many
    val images, spread over the sorted split; the split itself, which the evaluator chooses
    on, keeps all of them; null, or a limit at least val's size, leaves the data.yaml as is."""
    from yeo.evaluation import split_images
    from yeo.optimize.finetune import finetune, load_module

    val = split_images(tiny_data, "val")
    assert len(val) == 6
    cfg = TrainConfig.from_dict(TINY_TRAIN | {"monitor_images": 2})
    seen: list[list[str]] = []

    def record(tr) -> None:
        seen.append(sorted(Path(f).name for f in tr.validator.dataloader.dataset.im_files))

    out = trainer.train(tiny_data, cfg, ModelConfig(), tmp_path / "t", on_epoch_end=[record])
    finetune(load_module(out.best), tiny_data, cfg, tmp_path / "ft", on_epoch_end=[record])
    assert seen == [[val[0].name, val[-1].name]] * 2  # both ends of the sorted split
    assert split_images(tiny_data, "val") == val
    for limit in (None, 6, 50):
        assert trainer.monitor_data(tiny_data, limit, tmp_path / "m") == tiny_data
    with pytest.raises(ConfigError, match="monitor_images"):
        TrainConfig(monitor_images=0)


def test_bad_train_values_fail_fast() -> None:
    with pytest.raises(ConfigError, match="multiple of 32"):
        TrainConfig(imgsz=100)
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainConfig.from_dict({"imgsz": 64, "lr": 0.1})
    with pytest.raises(ConfigError, match="scratch or pretrained"):
        ModelConfig(init="imagenet")


def test_pretrained_offline_without_local_file_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match=r"model\.weights=/path/to/yolov8n\.pt"):
        trainer.build_model(ModelConfig(init="pretrained", weights="yolov8n.pt"))


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    from yeo.errors import DataError

    with pytest.raises(DataError, match=r"run `python run\.py --pipeline data`"):
        trainer.train(tmp_path / "nope.yaml", TrainConfig(), ModelConfig(), tmp_path / "r")


@pytest.mark.slow
def test_train_pipeline_tracks_registers_and_stays_offline(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    guard = tmp_path / "net.log"
    args = [
        "data.synthetic.num_images=16",
        "data.synthetic.test_images=0",
        "data.synthetic.val_images=0",
        "data.synthetic.imgsz=64",
        "train.imgsz=64",
        "train.epochs=2",
        "train.batch=8",
    ]
    out = run_cli("--pipeline", "train", *args, env_extra={"YEO_HOME": str(root)}, guard=guard)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not guard.exists() or guard.read_text() == "", guard.read_text()
    assert "trained      2 epochs" in out.stdout
    assert "registered   models:/yolov8n-synthetic/1" in out.stdout

    import mlflow

    uri = f"sqlite:///{root}/.state/mlflow/mlflow.db"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    exp = client.get_experiment_by_name("yolo-edge-optimizer")
    (run,) = client.search_runs([exp.experiment_id])
    for key in ("metrics/mAP50-95", "train/box_loss", "metrics/precision", "metrics/recall"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert steps == [1, 2], key
    assert run.data.params["train.imgsz"] == "64"
    assert run.data.tags["data.dvc_hash"].endswith(".dir")
    assert "base/mAP50-95" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "train")}
    assert {"train/results.csv", "train/weights"} <= artifacts
    (version,) = client.search_model_versions("name='yolov8n-synthetic'")
    assert version.tags["data_dvc_hash"] == run.data.tags["data.dvc_hash"]

    # the registered model loads and predicts, and its weights load in ultralytics
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model("models:/yolov8n-synthetic/1")
    image = next((root / "data" / "processed" / "synthetic" / "images" / "val").glob("*.jpg"))
    (pred,) = model.predict([str(image)])
    assert set(pred) == {"boxes", "classes", "scores"}
    weights = next((root / "outputs" / "train").rglob("best.pt"))
    from ultralytics import YOLO

    assert YOLO(str(weights)).names == {0: "scratch", 1: "pits", 2: "stain", 3: "crack"}


@pytest.mark.slow
def test_an_edited_dataset_is_read_again_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    """The train (and optimize) pipeline caches its data steps; the cache key includes the raw
    files' content, so a fixed label is new data (a new DVC version, trained on), while the
    same files again are a cache hit."""
    from tests.conftest import make_yolo, yaml_load

    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    mine = make_yolo(tmp_path / "mine", n=16)
    args = ["data=yolo", f"data.path={mine}", "train.imgsz=64", "train.epochs=1", "train.batch=8"]
    cached = "Using cached version of step `{}`"

    def run() -> tuple[str, str]:
        out = run_cli("--pipeline", "train", *args, env_extra={"YEO_HOME": str(root)})
        assert out.returncode == 0, out.stderr[-3000:]
        md5 = yaml_load(root / "data" / "processed" / "yolo.dvc")["outs"][0]["md5"]
        return md5, out.stdout + out.stderr

    first, _ = run()
    label = sorted((mine / "labels" / "train").glob("*.txt"))[0]
    label.write_text("1 0.5 0.5 0.3 0.3\n")  # the user fixes a label
    second, log = run()
    assert second != first and cached.format("ingest_data") not in log
    assert "trained      1 epochs" in log  # on the new version
    third, log = run()
    assert third == second
    assert cached.format("ingest_data") in log and cached.format("version_dataset") in log
    # a file the reader ignores: a new fingerprint, the same staged data, nothing published
    # again (an earlier run moved that staging folder into place already)
    (mine / "NOTES.txt").write_text("labelled by the night shift\n")
    fourth, log = run()
    assert fourth == third and cached.format("ingest_data") not in log
    assert cached.format("etl_dataset") in log and cached.format("version_dataset") in log
