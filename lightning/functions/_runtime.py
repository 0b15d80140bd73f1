"""What every Functions blueprint shares: the lazily built Container, the loop's ports and policy.

Nothing is built at import: the Functions host imports ``function_app.py`` only to index the functions,
and the first invocation builds the ``Container`` from the app settings (``Settings`` reads the
environment). Tests call ``use_container(...)`` to run the handlers on local adapters.

The loop's ports and policy come from ``lightning.commands.loop`` — the same wiring ``run-loop`` uses,
so both hosts read the same settings into the same ``LoopPolicy``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning.bootstrap import Container
    from lightning.ports.bundles import LoopPorts
    from lightning.services.loop import LoopPolicy

_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    """The process-wide Container, built on first use from the app settings."""
    global _container
    with _lock:
        if _container is None:
            from lightning.bootstrap import Container
            from lightning.config import check_time_limits

            built = Container()
            check_time_limits(built.settings)  # a promotion must fit in functionTimeout: refuse at start-up
            _container = built
        return _container


def use_container(value: Container | None) -> None:
    """Replace (or with None, forget) the process-wide Container: tests and warm restarts."""
    global _container
    with _lock:
        _container = value


def loop_policy() -> LoopPolicy:
    from lightning.bootstrap import loop_policy as build

    return build(container().settings)


def loop_ports() -> LoopPorts:
    return container().loop_ports()
