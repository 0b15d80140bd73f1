"""Named points where the fault suite stops a process so it can kill it there: a test seam, free when unused.

``LIGHTNING_FAULT_POINT=name[:n]`` makes the n-th pass (default the first) through ``fault_point(name)``
write ``$LIGHTNING_FAULT_DIR/name.reached`` (the process id) and then wait forever, so a test
(``tests/faults``, ``bench/bench_faults.py``) can ``kill -9`` the process at exactly that point instead
of sleeping and hoping. Unset — always, outside those — a call is one environment lookup.

Points: ``import.after_batch`` (a batch of episodes stored), ``label.after_chunk`` (a chunk of labels
saved), ``build.before_commit`` (dataset files uploaded, manifest not yet written),
``training.before_create_job`` (files uploaded and processed, job not yet created).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    wanted = os.environ.get("LIGHTNING_FAULT_POINT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != int(nth or 1):
        return
    marker = Path(os.environ.get("LIGHTNING_FAULT_DIR", ".")) / f"{name}.reached"
    marker.write_text(str(os.getpid()))
    while True:  # until the test kills us
        time.sleep(60)
