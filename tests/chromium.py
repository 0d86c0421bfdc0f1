"""Headless Debian Chromium through Playwright (no browser download): render a local page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# no background connections: this machine's network is closed and Chromium would retry
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def render(page_file: Path) -> dict:
    """Open ``page_file`` and read back what rendered: table rows and decoded image sizes."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (.ci/run installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.resolve().as_uri(), wait_until="load")
        result = page.evaluate(
            """() => ({
                title: document.title,
                rows: [...document.querySelectorAll('#variants tr')].map(r => r.innerText),
                images: [...document.images].map(i => [i.alt, i.complete, i.naturalWidth]),
            })"""
        )
        browser.close()
    result["external_requests"] = [u for u in requests if not u.startswith(("file:", "data:"))]
    return result
