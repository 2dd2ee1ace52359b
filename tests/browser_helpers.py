"""Helpers for tests/test_browser.py: headless Chromium, a throw-away JupyterLab, and process hygiene.

Everything started here is tagged with an environment variable (``DRAWVIZ_BROWSER_TEST=<random tag>``)
so that teardown can find what is left, even processes the Jupyter server put in a session of their
own (its kernels) or that were re-parented after their parent died.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
MARKER = "DRAWVIZ_BROWSER_TEST"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]

INSTALL_HELP = """\
The browser tests need Playwright (Python) and a Chromium binary; they do not skip without them.
  Set-up:   ./bootstrap.sh            (pip installs `.[notebooks,test]`, apt-installs Debian's chromium as root)
  or:       .venv/bin/pip install playwright && sudo apt-get install -y chromium
  or point  DRAWVIZ_CHROMIUM=/path/to/chrome  at any Chromium/Chrome binary.
(`playwright install chromium` works too where its download site is reachable: then set DRAWVIZ_CHROMIUM to
the binary it prints, or leave it unset and the test uses Playwright's own build.)"""


# ----------------------------------------------------------------------------- what we need


def chromium_executable() -> str | None:
    """DRAWVIZ_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH; None: Playwright's own build."""
    wanted = os.environ.get("DRAWVIZ_CHROMIUM")
    if wanted:
        if not (Path(wanted).is_file() and os.access(wanted, os.X_OK)):
            pytest.fail(f"DRAWVIZ_CHROMIUM={wanted!r} is not an executable file.\n{INSTALL_HELP}", pytrace=False)
        return wanted
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright as start

        return start
    except ImportError as err:
        problem = f"Playwright for Python is not installed ({err})."
    pytest.fail(f"{problem}\n{INSTALL_HELP}", pytrace=False)


@contextmanager
def chromium(tag: str):
    """A headless Chromium (Playwright), its processes tagged with ``tag``; closed, with Playwright's
    driver, however the block ends."""
    start = sync_playwright()
    executable = chromium_executable()
    pw = start().start()
    try:
        browser, problem = None, None
        try:
            browser = pw.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=120_000, env={**os.environ, MARKER: tag}
            )
        except Exception as err:  # no binary, or one that does not start
            problem = (
                f"could not start Chromium ({executable or 'no chromium on PATH; tried Playwright’s own build'}):"
                f"\n{str(err).strip()[:1500]}"
            )
        if browser is None:
            pytest.fail(f"{problem}\n{INSTALL_HELP}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


# ----------------------------------------------------------------------------- processes


def tagged_processes(tag: str) -> list[int]:
    """PIDs of live processes whose environment carries MARKER=tag (Linux /proc; not zombies)."""
    needle = f"{MARKER}={tag}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    pids.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return pids


def describe(pids) -> str:
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        out.append(f"  pid {pid}: {cmd[:200]}")
    return "\n".join(out)


def kill_all(pids, sig=signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(tag: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = tagged_processes(tag)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


# ----------------------------------------------------------------------------- JupyterLab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on 127.0.0.1 in its own process group, rooted in a temporary folder."""

    def __init__(self, root: Path, home: Path, log: Path):
        self.root, self.home, self.log_path = root, home, log
        self.tag = secrets.token_hex(8)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def env(self) -> dict:
        home = self.home
        settings = home / "lab-settings"
        notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True, exist_ok=True)
        # No "would you like news?" toast and no update check: nothing to click away, nothing fetched.
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env.update(
            {
                MARKER: self.tag,
                "JUPYTER_CONFIG_DIR": str(home / "config"),  # no user config or user kernel specs leak in
                "JUPYTER_DATA_DIR": str(home / "data"),
                "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                "JUPYTERLAB_SETTINGS_DIR": str(settings),
                "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
                "IPYTHONDIR": str(home / "ipython"),
                "JUPYTER_PLATFORM_DIRS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start(self, timeout: float = 180) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.extension_manager=readonly",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI runners often run as root
        # start_new_session: its own process group (and session), killed as a whole in stop().
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode} before it answered:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer on {self.base} within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(
            f"{self.base}/{path.lstrip('/')}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> list[int]:
        """Shut down kernels and server; returns the PIDs that were still alive afterwards (and were killed)."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            try:  # the polite way first: the server shuts its kernels down
                self.api("api/shutdown", method="POST", timeout=10)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)  # the group: the server and anything it left in it
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # Kernels run in sessions of their own (jupyter_client): the server's shutdown ends them; kill any left.
        left = wait_gone(self.tag, timeout=5)
        if left:
            kill_all(left)
            wait_gone(self.tag, timeout=5)
        return left
