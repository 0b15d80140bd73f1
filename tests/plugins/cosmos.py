"""Session fixture for the Cosmos DB REST emulator (``@vercel/cosmosdb-server`` from node_modules).

``cosmos_server`` starts the emulator once per session on a free port (running ``npm install`` in the
repository first when node_modules lacks it); ``cosmos_settings`` gives each test ``Settings`` pointing
at a fresh database of its own (dropped afterwards), with the well-known emulator key and TLS
verification off — the only way Lightning Loop ever uses a Cosmos key.

Emulator gaps the adapters live with (see ``../shared/LOCAL-SERVERS.md``): ``read_item`` of a missing id
answers 500, no OFFSET/LIMIT, GROUP BY or DISTINCT, and a stub change feed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_CLI = REPO / "node_modules" / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"
EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="


def pytest_configure(config: pytest.Config) -> None:
    # The emulator's certificate is self-signed, so its client runs with verification off on purpose;
    # the pyproject filter (".*verify.*") does not match urllib3's "Unverified HTTPS request" text.
    config.addinivalue_line("filterwarnings", "ignore:Unverified HTTPS request:Warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cosmosdb-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"cosmosdb-server did not listen on port {port} within {timeout} s")


@pytest.fixture(scope="session")
def cosmos_server() -> Iterator[str]:
    """The emulator's endpoint (``https://127.0.0.1:PORT/``), running for the whole session."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Cosmos DB emulator (npm @vercel/cosmosdb-server) needs it")
    if not SERVER_CLI.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: run `npm install` to get the Cosmos DB emulator")
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO, check=True)
    port = _free_port()
    # What the package's cli.js does, plus ``keepAlive``: without it the server answers
    # ``connection: close`` and every request pays a new TLS handshake (~60 ms instead of ~3 ms).
    script = (
        f"const lib = require({json.dumps(str(SERVER_CLI.parent))});"
        "lib.createHttpsServer({ keepAlive: true })"
        f".listen({port}, '127.0.0.1', () => console.log('ready'));"
    )
    proc = subprocess.Popen(
        [node, "-e", script],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    try:
        _wait_for_port(port, proc)
        yield f"https://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def cosmos_settings(cosmos_server: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A factory of ``Settings`` on the emulator, one fresh database per test (dropped at the end)."""
    from lightning.adapters.cosmos.client import forget_clients
    from lightning.config import Settings

    database = f"agents-{uuid.uuid4().hex[:12]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "lightning_home": tmp_path / "lightning-home",
            "lightning_store": "cosmos",
            "cosmos_endpoint": cosmos_server,
            "cosmos_key": EMULATOR_KEY,
            "cosmos_verify_tls": False,
            "cosmos_database": database,
        }
        values.update(overrides)
        return Settings(**values)

    yield make
    from azure.cosmos import CosmosClient

    client = CosmosClient(cosmos_server, credential=EMULATOR_KEY, connection_verify=False)
    try:
        client.delete_database(database)
    except Exception:  # the test may never have created it
        pass
    forget_clients()
