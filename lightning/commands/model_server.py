"""``serve-models``: run the local OpenAI-compatible model server (files, fine-tuning, models, chat)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lightning.config import get_settings
from lightning.domain.errors import InvalidInput
from lightning.extras import require_extra


def register(app: typer.Typer) -> None:
    @app.command("serve-models")
    def serve_models(
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
        port: int = typer.Option(8700, "--port", help="Port to listen on."),
        data_dir: Path | None = typer.Option(
            None, "--data-dir", help="Where files, jobs and models live (default $LIGHTNING_HOME/models)."
        ),
        max_file_mb: int = typer.Option(512, "--max-file-mb", help="Largest accepted upload, in MB."),
    ) -> None:
        """Serve local-base and fine-tuned models on an OpenAI-compatible API (Ctrl+C stops)."""
        if not 0 <= port < 65536:
            raise InvalidInput(
                f"--port must be between 0 and 65535 (0 picks a free port), got {port}", field="port"
            )
        if max_file_mb < 1:
            raise InvalidInput(f"--max-file-mb must be at least 1, got {max_file_mb}", field="max_file_mb")
        directory = data_dir or get_settings().models_dir
        require_extra("server", command="serve-models")  # names `lightning-loop[server]` if it is missing
        # Imported here: the server's libraries (uvicorn, scikit-learn) load only for this command.
        from lightning.adapters.modelserver.server import serve

        def announce(base_url: str) -> None:
            sys.stderr.write(f"Model server on {base_url} (data: {directory}); Ctrl+C stops it\n")

        serve(
            host=host,
            port=port,
            data_dir=directory,
            max_file_bytes=max_file_mb * 1024 * 1024,
            on_listening=announce,
        )
