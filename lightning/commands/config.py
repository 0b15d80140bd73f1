"""``show-config``: the effective settings, secrets masked."""

from __future__ import annotations

import typer

from lightning.commands._common import print_json, print_table
from lightning.config import get_settings


def show_config(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the effective settings (environment and .env), with secrets masked."""
    shown = get_settings().masked()
    if as_json:
        print_json(shown)
        return
    print_table(
        ["Setting", "Value"], sorted((key, "" if value is None else value) for key, value in shown.items())
    )


def register(app: typer.Typer) -> None:
    app.command("show-config")(show_config)
