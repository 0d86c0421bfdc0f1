"""A socket audit hook that records every DNS lookup or connection to a non-loopback address.

``python -m tests.netguard run.py ARGS...`` runs a script under the hook; attempts are appended
to the file named by ``$NETGUARD_LOG`` (one line each) and are not blocked, so a test can list
them all. ``$NETGUARD_FORBID`` names a folder whose files must not be opened either (another
"host's"): each open under it is recorded too. Python's audit events see every attempt,
whichever library makes it.
"""

from __future__ import annotations

import ipaddress
import os
import runpy
import socket
import sys

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]")
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offending(event: str, args: tuple) -> str | None:
    """A description of the attempt if ``event`` reaches beyond this machine, else None."""
    if event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        return None if _is_local(host) else f"getaddrinfo {host}:{port}"
    if event == "socket.connect":
        sock, address = args
        if getattr(sock, "family", None) == socket.AF_UNIX or not isinstance(address, tuple):
            return None
        return None if _is_local(address[0]) else f"connect {address}"
    if event == "socket.gethostbyname":
        return None if _is_local(args[0]) else f"gethostbyname {args[0]}"
    return None


def install(log_path: str, forbidden: str | None = None) -> None:
    """``forbidden``: a folder whose files this process must not open (another host's)."""

    def hook(event: str, args: tuple) -> None:
        if event == "open" and forbidden and isinstance(args[0], str | bytes | os.PathLike):
            path = os.fsdecode(args[0])
            what = f"open {path}" if path.startswith(forbidden) else None
        elif event.startswith("socket."):
            what = offending(event, args)
        else:
            return
        if what:
            with open(log_path, "a") as f:
                f.write(what + "\n")

    sys.addaudithook(hook)


if __name__ == "__main__":
    install(os.environ["NETGUARD_LOG"], os.environ.get("NETGUARD_FORBID"))
    script, *rest = sys.argv[1:]
    sys.argv = [script, *rest]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
