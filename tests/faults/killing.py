"""Run ``python -m lightning.cli …`` as a real process and SIGKILL it at a named fault point.

The child runs with ``LIGHTNING_FAULT_POINT=name[:n]`` (``lightning/faultpoints.py``): when it reaches
the point it writes a marker file and waits forever. We wait for the marker (with a deadline — never a
sleep-and-hope) and then ``kill -9`` it, so the kill lands at exactly that point every run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def kill_at(
    point: str, args: list[str], *, marker_dir: Path, timeout: float = 180.0
) -> subprocess.CompletedProcess[str]:
    """Start the CLI with ``args``, SIGKILL it once it reaches ``point``; returns what it printed."""
    marker_dir.mkdir(parents=True, exist_ok=True)
    marker = marker_dir / f"{point.partition(':')[0]}.reached"
    marker.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LIGHTNING_FAULT_POINT": point,
        "LIGHTNING_FAULT_DIR": str(marker_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = (
        time.monotonic() + timeout
    )  # a deadline on a condition: a loaded box may take a while to import
    try:
        while not marker.exists():
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"{args[0]} exited {process.returncode} before {point}: {err or out}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{args[0]} never reached {point}")
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None and not marker.exists():
            process.kill()
        out, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, (process.returncode, err)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
