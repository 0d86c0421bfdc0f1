"""The network guard itself: it must see what it is meant to catch (no packet is sent)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import CODE_ROOT
from tests.netguard import offending

PROBE = """
import socket
socket.getaddrinfo("localhost", 80)
socket.getaddrinfo("203.0.113.7", 443, flags=socket.AI_NUMERICHOST)  # TEST-NET-3, no DNS
"""


def test_offending_classifies_loopback_and_remote() -> None:
    assert offending("socket.getaddrinfo", ("localhost", 80, 0, 0, 0, 0)) is None
    assert offending("socket.getaddrinfo", ("127.0.0.1", 80, 0, 0, 0, 0)) is None
    assert offending("socket.getaddrinfo", ("::1", 80, 0, 0, 0, 0)) is None
    assert (
        offending("socket.getaddrinfo", ("pypi.org", 443, 0, 0, 0, 0)) == "getaddrinfo pypi.org:443"
    )
    sock = socket.socket()
    try:
        assert offending("socket.connect", (sock, ("10.1.2.3", 80))) == "connect ('10.1.2.3', 80)"
        assert offending("socket.connect", (sock, ("127.0.0.1", 80))) is None
    finally:
        sock.close()


def test_guard_records_a_real_attempt(tmp_path: Path) -> None:
    script, log = tmp_path / "probe.py", tmp_path / "net.log"
    script.write_text(PROBE)
    subprocess.run(
        [sys.executable, "-m", "tests.netguard", str(script)],
        cwd=CODE_ROOT,
        env={"NETGUARD_LOG": str(log), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert log.read_text().splitlines() == ["getaddrinfo 203.0.113.7:443"]
