"""Session fixture ``azurite``: the Azurite storage emulator (blob + queue), started from node_modules.

Started once per test session on free ports with ``--inMemoryPersistence`` (nothing on disk),
stopped at session end. Tests marked ``azurite`` use it; if Node or the npm package is missing
the fixture runs ``npm install`` once in the repository and fails with a clear message if that
is impossible (no manual step in the normal case).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AZURITE_JS = REPO / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
ACCOUNT = "devstoreaccount1"
# The well-known development account key every Azurite install uses (public, not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Azurite:
    blob_port: int
    queue_port: int

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"azurite did not listen on port {port} within {timeout:.0f} s")


def _ensure_installed() -> None:
    if AZURITE_JS.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("Azurite needs Node.js and npm (run `npm install` in the repository)")
    subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=REPO, check=True, timeout=600)
    if not AZURITE_JS.is_file():
        pytest.fail(f"npm install did not provide {AZURITE_JS}")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A running Azurite (blob + queue) for the whole session."""
    _ensure_installed()
    node = shutil.which("node")
    if node is None:
        pytest.fail("Azurite needs Node.js on PATH")
    blob_port, queue_port, table_port = _free_port(), _free_port(), _free_port()
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [
                node,
                str(AZURITE_JS),
                "--silent",
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(blob_port),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(queue_port),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(table_port),
            ],
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(blob_port, process)
        _wait_listening(queue_port, process)
        yield Azurite(blob_port=blob_port, queue_port=queue_port)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
