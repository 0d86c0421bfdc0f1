"""An edge bundle checked on Arm64 (aarch64), under user-mode emulation: correctness, not speed.

Debian's ``qemu-user-static`` runs an aarch64 Python 3.11 unpacked from ``debootstrap
--foreign`` (no chroot, no root file system mounted), with the bundle's own ``edge/`` code and
numpy, pillow and onnxruntime from their aarch64 wheels. onnxruntime then runs its Arm kernels
(NEON, dot-product) with their own requantization and rounding, so an INT8 model's outputs there
are Arm's, to compare with the x86 golden outputs. Emulation is 10-100x slower than a device and
its timing means nothing: nothing here measures time.

    python -m yeo.arm64 BUNDLE [--cpu cortex-a72]   # builds the environment once, then verifies

The environment is built once into ``$YEO_ARM64_HOME`` (default ``~/.cache/yeo/arm64``), outside
the repository like ``.venv``; building needs ``qemu-user-static`` and ``debootstrap`` (apt) and
the Debian and PyPI mirrors.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yeo.errors import UserError

log = logging.getLogger(__name__)

# onnxruntime 1.28 and later (1.32 included) crash on import under qemu-user 7.2 (segmentation
# fault); 1.19 to 1.26 import and run. numpy and pillow as edge/requirements.txt pins them.
ONNXRUNTIME = "1.26.0"
WHEELS = (f"onnxruntime=={ONNXRUNTIME}", "numpy==2.4.6", "pillow==13.0.0")
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"  # its python3 is 3.11
PYTHON = "3.11"
# Raspberry Pi 4 (Cortex-A72: NEON, no dot-product), then Graviton 2 / Jetson Orin class
# (Neoverse-N1: dot-product): onnxruntime picks other int8 kernels on each
CPUS = ("cortex-a72", "neoverse-n1")
TOOLS = {"qemu-aarch64-static": "qemu-user-static", "debootstrap": "debootstrap", "dpkg": "dpkg"}
NO_TIMING = "none: user-mode emulation, 10-100x slower than a device; only correctness is checked"


class Arm64Unavailable(UserError):
    """No aarch64 environment, and none can be built here."""


def home() -> Path:
    return Path(os.environ.get("YEO_ARM64_HOME") or Path.home() / ".cache" / "yeo" / "arm64")


@dataclass(frozen=True)
class Arm64Env:
    """A built environment: ``sys`` (the unpacked Debian arm64 packages) and ``site`` (the
    aarch64 wheels)."""

    root: Path

    @property
    def info(self) -> dict[str, Any]:
        return json.loads((self.root / "READY").read_text())

    def command(self, cpu: str, *args: str) -> list[str]:
        sysroot = self.root / "sys"
        python = sysroot / "usr" / "bin" / f"python{PYTHON}"
        return ["qemu-aarch64-static", "-cpu", cpu, "-L", str(sysroot), str(python), *args]

    def run(self, cpu: str, *args: str, path: Path | None = None, timeout: int = 600) -> Any:
        """``python ARGS`` on the emulated ``cpu``, the wheels (and ``path``) importable."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join(str(p) for p in (path, self.root / "site") if p),
            "PYTHONDONTWRITEBYTECODE": "1",  # nothing written into a bundle it runs from
            "PYTHONNOUSERSITE": "1",
        }
        return subprocess.run(
            self.command(cpu, *args),
            capture_output=True,
            text=True,
            env=env,
            cwd=path,
            timeout=timeout,
        )


def missing_tools() -> list[str]:
    """The Debian packages this machine lacks to build or run the environment."""
    return sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})


def ensure(build: bool = True, root: Path | None = None) -> Arm64Env:
    """The environment at ``root`` (default :func:`home`), built first when missing and
    ``build``; :class:`Arm64Unavailable` says why there is none."""
    root = Path(root or home())
    if (root / "READY").is_file() and shutil.which("qemu-aarch64-static"):
        return Arm64Env(root)
    if missing := missing_tools():
        raise Arm64Unavailable(
            f"Arm64 emulation needs {', '.join(missing)}: apt-get install {' '.join(missing)}"
        )
    if not build:
        raise Arm64Unavailable(
            f"no aarch64 environment at {root}: `python -m yeo.arm64 BUNDLE` builds it (about a "
            "minute, from the Debian and PyPI mirrors)"
        )
    return _build(root)


def _step(what: str, cmd: list[str], timeout: int = 900, quiet: bool = False) -> None:
    log.log(logging.DEBUG if quiet else logging.INFO, "arm64: %s", what)
    # set-up, like `make install`: the package registries are allowed (yeo.env's run-time
    # PIP_NO_INDEX is not for it)
    env = {k: v for k, v in os.environ.items() if k != "PIP_NO_INDEX"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if res.returncode:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Arm64Unavailable(f"Arm64 environment: {what} failed: {last[0]}")


def _build(root: Path) -> Arm64Env:
    """debootstrap's arm64 packages unpacked (``dpkg -x``) and the aarch64 wheels, in a temp
    folder beside ``root`` that becomes it in one rename, once the emulated Python imports
    onnxruntime."""
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        boot = work / "boot"
        _step(
            f"debootstrap {SUITE} arm64 (python3)",
            [
                "debootstrap",
                "--arch=arm64",
                "--variant=minbase",
                "--foreign",
                "--include=python3",
                SUITE,
                str(boot),
                MIRROR,
            ],
        )
        debs = sorted((boot / "var" / "cache" / "apt" / "archives").glob("*.deb"))
        log.info("arm64: unpacking %d packages", len(debs))
        for deb in debs:
            _step(
                f"unpack {deb.name}", ["dpkg", "-x", str(deb), str(work / "sys")], 120, quiet=True
            )
        shutil.rmtree(boot)
        _step(
            f"aarch64 wheels ({', '.join(WHEELS)})",
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--platform",
                "manylinux_2_28_aarch64",
                "--only-binary=:all:",
                "--python-version",
                PYTHON,
                "--target",
                str(work / "site"),
                *WHEELS,
            ],
        )
        env = Arm64Env(work)
        probe = "import onnxruntime, numpy, PIL, platform; "
        probe += "print(onnxruntime.__version__, platform.machine())"
        res = env.run(CPUS[0], "-c", probe, timeout=300)
        if res.returncode or res.stdout.split()[:2] != [ONNXRUNTIME, "aarch64"]:
            raise Arm64Unavailable(
                f"Arm64 environment: the emulated Python does not import onnxruntime "
                f"{ONNXRUNTIME} (exit {res.returncode}: {(res.stderr or res.stdout)[-200:]})"
            )
        qemu = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True)
        info = {
            "debian": SUITE,
            "python": PYTHON,
            "wheels": list(WHEELS),
            "qemu": qemu.stdout.splitlines()[0] if qemu.stdout else "qemu-aarch64-static",
            "packages": len(debs),
        }
        (work / "READY").write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(root, ignore_errors=True)  # a partial one from an older layout
        work.rename(root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("arm64: environment ready at %s", root)
    return Arm64Env(root)


def verify(bundle: Path, cpu: str = CPUS[0], env: Arm64Env | None = None) -> dict[str, Any]:
    """``python -m edge.verify BUNDLE --report`` on the emulated ``cpu`` (this checkout's
    ``edge/``, which a bundle carries a copy of): its report (``ok``, ``faults``, each model
    file's largest ``errors``, the onnxruntime version and machine), and the CPU."""
    import edge

    env = env or ensure()
    bundle = Path(bundle).resolve()
    code = Path(edge.__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        res = env.run(cpu, "-m", "edge.verify", str(bundle), "--report", str(out), path=code)
        if not out.is_file():  # it crashed before it could judge
            tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            raise Arm64Unavailable(
                f"{bundle.name}: edge.verify did not run under aarch64 emulation "
                f"(exit {res.returncode}): {tail[0]}"
            )
        report = json.loads(out.read_text())
    return report | {"cpu": cpu, "qemu": env.info["qemu"]}


def observed(bundle: Path, cpu: str = CPUS[0], env: Arm64Env | None = None) -> dict[str, Any]:
    """golden.json's ``observed`` entry for Arm64: the largest box and score differences from
    the x86 golden outputs over the bundle's model files, each file's, and what it ran under.
    A bundle that fails there is refused (:class:`edge.bundle.PortabilityError`)."""
    from edge.bundle import PortabilityError

    rep = verify(bundle, cpu, env)
    if not rep["ok"]:
        raise PortabilityError(
            f"{Path(bundle).name}: fails on Arm64 (emulated {cpu}, onnxruntime "
            f"{rep['onnxruntime']}): {rep['faults'][0]}"
        )
    errors = rep["errors"]
    return {
        "box_px": max(e["box"] for e in errors.values()),
        "score": max(e["score"] for e in errors.values()),
        "files": {f: {"box_px": e["box"], "score": e["score"]} for f, e in errors.items()},
        "cpu": f"{cpu} ({rep['machine']}, emulated by {rep['qemu']})",
        "onnxruntime": rep["onnxruntime"],
        "timing": NO_TIMING,
    }


def observer(mode: str) -> dict[str, Any]:
    """The bundle builder's observers for ``optimize.bundle.arm64``: ``on`` builds the
    environment when missing and fails without one; ``auto`` checks when it is built, else
    records why not; ``off``: none."""
    if mode == "off":
        return {}

    def run(folder: Path) -> dict[str, Any] | str:
        try:
            env = ensure(build=mode == "on")
        except Arm64Unavailable as e:
            if mode == "on":
                raise
            return f"not run: {e}"
        return observed(folder, env=env)

    return {"arm64_emulated": run}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m yeo.arm64", description=__doc__.split("\n")[0])
    parser.add_argument("bundle", type=Path, help="a bundle folder")
    parser.add_argument("--cpu", default=CPUS[0], help=f"qemu -cpu (default {CPUS[0]})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        rep = verify(args.bundle, args.cpu)
    except UserError as e:
        print(f"yeo.arm64: error: {e}", file=sys.stderr)
        return 2
    for fault in rep["faults"]:
        print(f"yeo.arm64: FAIL {args.bundle}: {fault}", file=sys.stderr)
    if rep["faults"]:
        return 1
    print(
        f"yeo.arm64: OK {args.bundle} on {args.cpu} ({rep['machine']}, emulated; onnxruntime "
        f"{rep['onnxruntime']}): {rep['summary']}. No timing: emulation says nothing of speed."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
