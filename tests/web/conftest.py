"""Browser tests: a real ``kimflow serve --demo`` on localhost, driven by Playwright in Debian's Chromium.

The server is started once per test session (per xdist worker; all browser tests share the
``browser`` group, so one worker runs them all) with a small simulated demo year, and its
printed demo accounts are parsed from the console, exactly as a newcomer would read them.
Playwright's own browser download does not work offline, so Chromium comes from Debian
(``/usr/bin/chromium``, installed by ``.ci/run``); without it the tests skip locally and
fail where ``KIMFLOW_REQUIRE_BROWSER=1`` (CI).

Every page a test visits can be checked with :func:`assert_accessible` (axe-core 4.14,
vendored under ``tests/web/vendor``, MPL-2.0): zero WCAG 2.1 A/AA violations allowed.
:func:`screenshot` writes ``artifacts/screenshots/<name>.png`` for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("KIMFLOW_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
ARTIFACTS = ROOT / "artifacts" / "screenshots"
REQUIRE_BROWSER_ENV = "KIMFLOW_REQUIRE_BROWSER"
# The flags the machine needs: no sandbox as root, and no background connections to Google
# (this network refuses them, and each refusal costs time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = pytest.mark.xdist_group("browser")


@dataclass(frozen=True)
class DemoServer:
    url: str
    database_url: str
    passwords: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require_chromium() -> None:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_BROWSER_ENV}=1 requires the browser tests to run", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """``kimflow serve --demo`` on a free port, with its console output parsed for the accounts."""
    _require_chromium()
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {
        **os.environ,
        "KIMFLOW_ENVIRONMENT": "test",
        "KIMFLOW_TICK_ENABLED": "false",
        "TMPDIR": str(tmp_path_factory.mktemp("demo")),
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--demo", "--demo-cases", "120"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--processes", str(ROOT / "processes")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"kimflow serve --demo ended with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"kimflow serve --demo did not come up:\n{log.read_text()}")
            time.sleep(0.3)
        console = log.read_text()
        passwords = dict(
            re.findall(r"^\s+(\w+)\s+(\S+)\s+(?:caseworker|coordinator|projectgroup|admin)$", console, re.M)
        )
        database = re.search(r"^Demo-Datenbank: (.+)$", console, re.M)
        assert database and len(passwords) == 4, console
        yield DemoServer(url, f"sqlite:///{database.group(1)}", passwords)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser(demo_server: DemoServer) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, demo_server: DemoServer) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies) in German, with the demo server as base URL."""
    context = browser.new_context(base_url=demo_server.url, locale="de-DE", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def login(page, demo_server: DemoServer, name: str) -> None:  # type: ignore[no-untyped-def]
    """Log in through the form, as a person would."""
    page.goto("/anmelden")
    page.get_by_label("Benutzername").fill(name)
    page.get_by_label("Passwort").fill(demo_server.passwords[name])
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_load_state()


def assert_accessible(page, context: str = "") -> None:  # type: ignore[no-untyped-def]
    """Run axe-core on the page: no WCAG 2.1 A/AA violation may remain."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    violations = result["violations"]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(n['target'][0] for n in v['nodes'][:5])}"
        for v in violations
    ]
    assert not violations, f"axe found {len(violations)} WCAG violation(s) on {context or page.url}:\n" + "\n".join(
        lines
    )


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# The HTTP-level page tests reuse the API tests' app, users and clock (both backends).
from tests.api.conftest import api, test_settings  # noqa: E402, F401
