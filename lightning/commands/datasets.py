"""Dataset commands: ``build-dataset``, ``dataset-info``, ``list-datasets`` (the workshop's verbs and flags).

Each command parses its flags, calls one service (``lightning.services.datasets``) and prints a
``Key: value`` block or a table for people, ``--json`` for scripts. Domain errors become one line
on stderr and a non-zero exit (see ``lightning.cli``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from lightning.commands._common import (
    container,
    parse_datetime,
    print_block,
    print_json,
    print_table,
    progress,
)
from lightning.domain.dataset import DatasetManifest
from lightning.domain.errors import InvalidInput
from lightning.services import datasets as dataset_service


@contextlib.contextmanager
def _progress_bar() -> Iterator[dataset_service.ProgressFn | None]:
    if not sys.stderr.isatty():
        yield None
        return
    with progress() as bar:
        task = bar.add_task("Building dataset", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        yield advance


def _check_writable(folder: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"{flag} {folder} cannot be created: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise InvalidInput(f"{flag} {folder} is not writable")


def _read_prompt(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read --system-prompt-file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None


def build_dataset(
    agent_id: str = typer.Option(..., "--agent-id", help="Agent whose episodes to use."),
    name: str = typer.Option(..., "--name", help="Dataset name (immutable once built)."),
    min_reward: float = typer.Option(0.7, "--min-reward", help="Keep episodes with reward at/above this."),
    output_format: str = typer.Option("jsonl", "--output-format", help="jsonl (chat, tool calls) or dpo."),
    validation_split: float = typer.Option(0.1, "--validation-split", help="Held-out fraction (by id hash)."),
    max_examples: int | None = typer.Option(None, "--max-examples", help="Keep at most this many (newest)."),
    since: str | None = typer.Option(None, "--since", help="Episodes from this time on (ISO 8601)."),
    until: str | None = typer.Option(None, "--until", help="Episodes before this time (ISO 8601)."),
    system_prompt_file: Path | None = typer.Option(
        None, "--system-prompt-file", help="Use this system prompt instead of the agent's."
    ),
    base_model: str | None = typer.Option(
        None, "--base-model", help="Base model whose token limit applies (default BASE_MODEL)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a dataset of this name."),
    output_dir: Path | None = typer.Option(None, "--output-dir", help="Also copy the JSONL files here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Build a fine-tuning dataset from labeled episodes (validated, redacted, de-duplicated)."""
    if output_format not in ("jsonl", "dpo"):
        raise InvalidInput(f"--output-format must be jsonl or dpo, got {output_format!r}")
    if output_dir is not None:
        _check_writable(output_dir, "--output-dir")
    c = container()
    settings = c.settings
    request = dataset_service.BuildRequest(
        agent_id=agent_id,
        name=name,
        min_reward=min_reward,
        output_format=output_format,
        validation_split=validation_split,
        max_examples=max_examples,
        since=parse_datetime(since, flag="--since"),
        until=parse_datetime(until, flag="--until"),
        system_prompt=_read_prompt(system_prompt_file),
        base_model=base_model or settings.base_model,
        overwrite=overwrite,
        max_tool_result_chars=settings.capture_max_result_chars,
    )
    ports = c.dataset_ports()
    with _progress_bar() as advance:
        outcome = dataset_service.build_dataset(request, ports, progress=advance)
    copies = _copy_files(outcome.manifest, output_dir, ports.blobs) if output_dir is not None else {}
    if as_json:
        data = dataset_service.summary(outcome.manifest)
        data["reused"] = outcome.reused
        data["copies"] = {split: str(path) for split, path in copies.items()}
        print_json(data)
        return
    _print_build(outcome, copies)


def _copy_files(manifest: DatasetManifest, output_dir: Path, blobs: Any) -> dict[str, Path]:
    copies: dict[str, Path] = {}
    for file in manifest.files:
        target = output_dir / f"{manifest.name}.{file.split}.jsonl"
        partial = target.with_name(target.name + ".partial")
        try:
            blobs.download_file(file.uri, partial)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
        copies[file.split] = target
    return copies


def _print_build(outcome: dataset_service.BuildOutcome, copies: dict[str, Path]) -> None:
    m = outcome.manifest
    lines: list[tuple[str, Any]] = [
        ("Dataset", m.name),
        ("Status", "unchanged (an identical dataset already exists)" if outcome.reused else "built"),
        ("Agent", m.agent_id),
        ("Format", m.format),
        ("Episodes", f"{m.episode_count:,}"),
        ("Train Examples", f"{m.examples('train'):,}"),
        ("Validation Examples", f"{m.examples('validation'):,}"),
        ("Avg Reward", f"{m.reward.avg:.2f}"),
        ("Token Count", f"{m.token_count:,}"),
        ("Dropped", ", ".join(f"{k} {v:,}" for k, v in m.dropped.items()) or "none"),
        ("Redacted", ", ".join(f"{k} {v:,}" for k, v in m.redactions.items()) or "none"),
    ]
    for file in m.files:
        lines.append((f"{file.split.capitalize()} File", file.uri))
    for split, path in copies.items():
        lines.append((f"{split.capitalize()} Copy", path))
    lines.extend(("Note", note) for note in m.notes)
    print_block(lines)


def dataset_info(
    name: str = typer.Option(..., "--name", help="Dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a dataset's statistics (the workshop's block, then splits and tools)."""
    manifest = dataset_service.dataset_info(name, datasets=container().datasets)
    if as_json:
        print_json(dataset_service.summary(manifest))
        return
    print_block(dataset_service.info_block(manifest))


def list_datasets(
    agent_id: str | None = typer.Option(None, "--agent-id", help="Only this agent's datasets."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List datasets, newest first."""
    manifests = dataset_service.list_datasets(datasets=container().datasets, agent_id=agent_id)
    if as_json:
        print_json([dataset_service.summary(m) for m in manifests])
        return
    if not manifests:
        sys.stdout.write("No datasets" + (f" for {agent_id}" if agent_id else "") + ".\n")
        return
    print_table(
        ["Name", "Agent", "Episodes", "Train/Val", "Tokens", "Reward", "Created"],
        [
            (
                m.name if m.format == "jsonl" else f"{m.name} ({m.format})",
                m.agent_id,
                f"{m.episode_count:,}",
                f"{m.examples('train'):,}/{m.examples('validation'):,}",
                f"{m.token_count:,}",
                f"{m.reward.avg:.2f}",
                m.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for m in manifests
        ],
    )


def register(app: typer.Typer) -> None:
    app.command("build-dataset")(build_dataset)
    app.command("dataset-info")(dataset_info)
    app.command("list-datasets")(list_datasets)
