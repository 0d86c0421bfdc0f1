"""Publish a validated dataset and version it with DVC.

The staging folder replaces ``data/processed/<name>`` in one rename. DVC then records it:
``dvc add`` writes ``<name>.dvc`` beside it, except for paths that a ``dvc.yaml`` stage
owns, which ``dvc repro`` (or ``dvc commit``) records in ``dvc.lock``; inside such a stage
(``DVC_STAGE`` set) the hash is computed without touching DVC's state. Data is pushed to the
project's local remote so ``dvc pull`` works offline.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from yeo.data.etl import read_tables
from yeo.data.model import DataVersion, StagedDataset
from yeo.io import replace_dir

log = logging.getLogger(__name__)
REMOTE_NAME = "local"
# ultralytics writes labels/<split>.cache into a dataset it reads: derived files, rewritten by
# every training and evaluation, that would otherwise change the folder's DVC hash
IGNORED = "*.cache"


def publish(staged: StagedDataset) -> Path:
    """Move the staging folder onto the processed target in one rename."""
    target = Path(staged.target_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    replace_dir(staged.staging, target)
    return target


def ensure_repo(root: Path, remote_dir: Path):
    """Open the DVC repo at ``root``, creating it (and a local default remote) if missing."""
    from dvc.repo import Repo

    if not (root / ".dvc").is_dir():
        Repo.init(str(root), no_scm=not (root / ".git").exists())
    ignore = root / ".dvcignore"
    text = ignore.read_text() if ignore.exists() else ""
    if IGNORED not in text.split():
        note = "# ultralytics' label caches (labels/<split>.cache): derived, not data"
        ignore.write_text(f"{text.rstrip()}\n\n{note}\n{IGNORED}\n".lstrip())
    repo = Repo(str(root))
    with repo.config.edit() as conf:
        conf["core"]["analytics"] = False
        conf["core"]["check_update"] = False
        if REMOTE_NAME not in conf["remote"]:
            # given relative to the cwd (the root), DVC stores it relative to .dvc/: portable
            with contextlib.chdir(root):
                conf["remote"][REMOTE_NAME] = {"url": os.path.relpath(remote_dir, root)}
            conf["core"]["remote"] = REMOTE_NAME
    return repo


def _stage_owning(repo, path: Path) -> str | None:
    """Name of the dvc.yaml stage that lists ``path`` as an output, if any."""
    for stage in repo.index.stages:
        if stage.is_data_source:
            continue
        if any(Path(out.fs_path).resolve() == path.resolve() for out in stage.outs):
            return stage.addressing
    return None


def dir_hash(repo, path: Path) -> str:
    """DVC's md5 of a directory (``<md5>.dir``) without writing to the cache."""
    from dvc_data.hashfile.build import build

    _, _, obj = build(
        repo.cache.local,
        str(path),
        repo.cache.local.fs,
        "md5",
        dry_run=True,
        ignore=repo.dvcignore,
    )
    return obj.hash_info.value


def folder_hash(root: Path, path: Path) -> str | None:
    """DVC's md5 of ``path`` as it is now, in the DVC repo at ``root`` (None without one)."""
    from dvc.repo import Repo

    if not (root / ".dvc").is_dir():
        return None
    with contextlib.chdir(root), Repo(str(root)) as repo:
        return dir_hash(repo, path)


def track(root: Path, remote_dir: Path, path: Path, push: bool = True) -> tuple[str, str]:
    """Record ``path`` in DVC; returns (md5 hash, what records it)."""
    rel = path.resolve().relative_to(root.resolve())
    with contextlib.chdir(root):  # DVC resolves stage paths against the working directory
        return _track(ensure_repo(root, remote_dir), path, rel, push)


def _track(repo, path: Path, rel: Path, push: bool) -> tuple[str, str]:
    try:
        stage = _stage_owning(repo, path)
        if os.environ.get("DVC_STAGE"):  # running as a dvc.yaml stage: dvc records it after us
            return dir_hash(repo, path), f"dvc.yaml stage {os.environ['DVC_STAGE']}"
        if stage:
            repo.commit(stage, force=True)
            md5, owner, target = dir_hash(repo, path), f"dvc.lock ({stage})", str(rel)
        else:
            out = repo.add(str(rel))[0].outs[0]
            md5, owner = out.hash_info.value, f"{rel}.dvc"
            # a bare path target is looked up in dvc.yaml when one exists (and fails for a
            # path that only a .dvc file tracks): name the .dvc file itself
            target = owner
        if push:
            repo.push(targets=[target], remote=REMOTE_NAME)
        return md5, owner
    finally:
        repo.close()


def version(
    staged: StagedDataset, root: Path, remote_dir: Path, raw_dir: Path | None, push: bool = True
) -> DataVersion:
    """Publish the staged dataset and record it (and our own generated raw files) in DVC."""
    target = publish(staged)
    raw_hash = track(root, remote_dir, raw_dir, push)[0] if raw_dir else None
    md5, owner = track(root, remote_dir, target, push)
    images, boxes = read_tables(target)
    log.info("versioned %s: %s (%s)", target, md5, owner)
    return DataVersion(
        name=staged.name,
        location=target.relative_to(root).as_posix(),
        dvc_hash=md5,
        raw_dvc_hash=raw_hash,
        tracked_by=owner,
        n_images=len(images),
        n_boxes=len(boxes),
        names=staged.names,
    )
