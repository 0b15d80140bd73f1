"""The ``lightning-loop`` / ``python -m lightning.cli`` command line.

Verbs and flags follow the workshop. Each area's commands live in
``lightning/commands/<area>.py`` and register themselves here. Errors become
one line on stderr and a non-zero exit code — never a traceback (set
``LIGHTNING_DEBUG=1`` to see one).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import typer

from lightning.domain.errors import InvalidInput, LightningError, NotFound
from lightning.extras import missing_dependency

COMMAND_MODULES = (
    "config",
    "episodes",
    "datasets",
    "training",
    "models",
    "review",
    "compare",
    "model_server",
    "agent",
    "loop",
    "console",
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="lightning-loop",
        help="Lightning Loop: continuous fine-tuning for tool-calling agents.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root() -> None:
        """Lightning Loop: continuous fine-tuning for tool-calling agents."""

    for name in COMMAND_MODULES:
        importlib.import_module(f"lightning.commands.{name}").register(app)
    return app


def _fail(message: str, code: int) -> int:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"error: {first_line}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app = build_app()
        result = app(args=args, prog_name="lightning-loop", standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return _fail("aborted", 130)
    except typer.TyperException as exc:  # usage errors: bad flag, missing option, bad value
        return _fail(exc.format_message(), int(getattr(exc, "exit_code", EXIT_USAGE)))
    except NotFound as exc:
        return _fail(str(exc), EXIT_NOT_FOUND)
    except InvalidInput as exc:
        return _fail(str(exc), EXIT_USAGE)
    except LightningError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        # an optional package that is not installed: name the extra that brings it
        missing = (
            missing_dependency(exc, command=args[0] if args else None)
            if isinstance(exc, ModuleNotFoundError)
            else None
        )
        if missing is not None:
            return _fail(str(missing), EXIT_ERROR)
        if os.environ.get("LIGHTNING_DEBUG"):
            raise
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (set LIGHTNING_DEBUG=1 for a traceback)", EXIT_ERROR
        )


if __name__ == "__main__":
    sys.exit(main())
