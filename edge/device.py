"""What machine a benchmark ran on: CPU model, cores, the ISA flags that matter, OS, runtimes.

Standard library only (plus the runtimes' own version strings), so it works on a
Raspberry Pi as well as on a Xeon.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

# flag as the kernel spells it in /proc/cpuinfo -> the name reports use
X86_FLAGS = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX512F",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_tile": "AMX",
    "amx_int8": "AMX-INT8",
    "amx_bf16": "AMX-BF16",
}
ARM_FLAGS = {"asimd": "NEON", "asimddp": "DOTPROD", "i8mm": "I8MM", "bf16": "BF16", "sve": "SVE"}
RUNTIMES = ("onnxruntime", "openvino", "numpy", "pillow")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _field(text: str, *names: str) -> str | None:
    for name in names:
        m = re.search(rf"^{name}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return None


def cpu_model(info: str) -> str:
    """The marketing name of the CPU, as well as the OS tells it."""
    name = _field(info, "model name", "Model", "Hardware", "cpu model")
    if name:
        return name
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            return out.stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def isa_flags(info: str) -> list[str]:
    """The SIMD / matrix extensions int8 and fp32 kernels choose between (x86 and Arm)."""
    flags = set((_field(info, "flags", "Features") or "").split())
    table = ARM_FLAGS if platform.machine().lower() in {"aarch64", "arm64", "armv7l"} else X86_FLAGS
    found = [name for flag, name in table.items() if flag in flags]
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        found = ["NEON", "DOTPROD"]  # every Apple silicon core has both
    return found


def runtime_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in RUNTIMES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def describe() -> dict[str, object]:
    """A JSON-able description of this machine."""
    info = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        usable = os.cpu_count() or 1
    return {
        "hostname": platform.node(),
        "cpu": cpu_model(info),
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "isa": isa_flags(info),
        "os": f"{platform.system()} {platform.release()}",
        "runtimes": runtime_versions(),
    }
