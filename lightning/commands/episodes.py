"""Episode commands: ``list-episodes``, ``show-episode``, ``label-episode``, ``label-batch``,
``import-episodes``, ``export-episodes`` (the workshop's verbs and flags, plus import/export), and
``migrate-store`` (rewrites Cosmos documents from before the label history).

Each command parses its flags, calls one service (``lightning.services.episodes`` or
``lightning.services.labeling``) and prints: a table or ``Key: value`` block for people,
``--json`` for scripts. Domain errors become one line on stderr (see ``lightning.cli``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from lightning.commands._common import (
    container,
    current_user,
    parse_datetime,
    print_block,
    print_json,
    print_table,
    progress,
)
from lightning.domain.episode import Episode, format_timestamp
from lightning.domain.errors import InvalidInput, LightningError
from lightning.services import episodes as episode_service
from lightning.services import labeling

_PROGRESS_AT = 500  # batches at least this long get a progress bar (on stderr, when it is a terminal)


def _short(text: str | None, width: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _reward(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _label_source(episode: Episode) -> str:
    if episode.label is not None:
        return episode.label.source
    return "imported" if episode.labeled else "-"


@contextlib.contextmanager
def _progress_bar(description: str, total: int) -> Iterator[Callable[[int], None] | None]:
    if total < _PROGRESS_AT or not sys.stderr.isatty():
        yield None
        return
    with progress() as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


# --- list / show -------------------------------------------------------------------------------
def list_episodes(
    agent_id: str | None = typer.Option(None, "--agent-id", help="Only this agent's episodes."),
    limit: int = typer.Option(20, "--limit", help="At most this many, newest first."),
    unlabeled_only: bool = typer.Option(False, "--unlabeled-only", help="Only episodes without a reward."),
    labeled_only: bool = typer.Option(False, "--labeled-only", help="Only labeled episodes."),
    since: str | None = typer.Option(None, "--since", help="From this time on (ISO 8601, UTC if no zone)."),
    until: str | None = typer.Option(None, "--until", help="Before this time (ISO 8601)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array of episodes."),
) -> None:
    """List episodes, newest first."""
    query = episode_service.episode_query(
        agent_id=agent_id,
        unlabeled_only=unlabeled_only,
        labeled_only=labeled_only,
        since=parse_datetime(since, flag="--since"),
        until=parse_datetime(until, flag="--until"),
        limit=limit,
    )
    found = episode_service.list_episodes(container().episodes, query)
    if as_json:
        print_json([episode.to_document() for episode in found])
        return
    if not found:
        which = f" for agent {agent_id!r}" if agent_id else ""
        kind = " unlabeled" if unlabeled_only else " labeled" if labeled_only else ""
        sys.stdout.write(f"No{kind} episodes{which}.\n")
        return
    columns = ["ID", "Timestamp", "Query", "Tool", "Reward", "Label"]
    rows = [
        [
            e.id,
            e.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            _short(e.state.query, 48),
            e.action.tool or "-",
            _reward(e.reward),
            _label_source(e),
        ]
        for e in found
    ]
    if agent_id is None:  # several agents: say whose each one is
        columns.insert(2, "Agent")
        for row, e in zip(rows, found, strict=True):
            row.insert(2, e.agent_id)
    print_table(columns, rows, title=f"{len(found)} episode(s), newest first (UTC)")


def show_episode(
    episode_id: str = typer.Option(..., "--episode-id", help="The episode to show."),
    agent_id: str | None = typer.Option(None, "--agent-id", help="Its agent (a point read on Cosmos DB)."),
    as_json: bool = typer.Option(False, "--json", help="Print the episode document as JSON."),
) -> None:
    """Show one episode in full."""
    episode = container().episodes.get(episode_id, agent_id=agent_id)
    if as_json:
        print_json(episode.to_document())
        return
    lines: list[tuple[str, Any]] = [
        ("Episode", episode.id),
        ("Agent", episode.agent_id),
        ("Timestamp", format_timestamp(episode.timestamp)),
        ("Query", episode.state.query),
        ("Tool", episode.action.tool or "-"),
        ("Arguments", json.dumps(episode.action.arguments, ensure_ascii=False)),
        ("Result", _short(json.dumps(episode.result, ensure_ascii=False, default=str), 200)),
        ("Model Version", episode.model_version or "-"),
        ("Error", episode.error or "-"),
        ("Reward", _reward(episode.reward)),
        ("Labeled", "yes" if episode.labeled else "no"),
    ]
    if episode.label is not None:
        lines += [
            ("Label Source", episode.label.source),
            ("Reason", episode.label.reason or "-"),
            ("Labeled By", episode.label.labeled_by),
            ("Labeled At", format_timestamp(episode.label.labeled_at)),
        ]
        if episode.label.evaluator:
            lines.append(("Evaluator", f"{episode.label.evaluator} ({episode.label.evaluator_version})"))
    print_block(lines)


# --- labeling ----------------------------------------------------------------------------------
def label_episode(
    episode_id: str = typer.Option(..., "--episode-id", help="The episode to label."),
    agent_id: str | None = typer.Option(None, "--agent-id", help="Its agent (a point read on Cosmos DB)."),
    reward: str = typer.Option(
        ..., "--reward", help="Reward between 0 and 1 (0.9-1.0 excellent … 0-0.29 failed)."
    ),
    reason: str = typer.Option("", "--reason", help="Why this reward."),
    expected_tool: str | None = typer.Option(
        None, "--expected-tool", help="The tool the agent should have called (one of its tools)."
    ),
    expected_arguments: str | None = typer.Option(
        None,
        "--expected-arguments",
        help="Its arguments as a JSON object, e.g. '{\"horizon_months\": 6}' (checked against the schema).",
    ),
    if_match: str | None = typer.Option(
        None, "--if-match", help="The etag you reviewed (show-episode --json): refuse if it changed since."
    ),
    labeled_by: str | None = typer.Option(
        None, "--labeled-by", help="Who labels (default $LIGHTNING_USER or your OS user)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the labeled episode as JSON."),
) -> None:
    """Label one episode by hand, optionally with the call it should have made.

    A human label is never overwritten by auto-labeling. A correction (another call) or a confirmation
    joins the agent's golden set and teaches the corrected call in the next dataset."""
    c = container()
    outcome = labeling.label_episode(
        labeling.HumanLabel(
            episode_id=episode_id,
            reward=reward,
            reason=reason,
            labeled_by=labeled_by or current_user(container().settings.lightning_user),
            agent_id=agent_id,
            expected_tool=expected_tool,
            expected_arguments=expected_arguments,
            if_match=if_match,
        ),
        episodes=c.episodes,
        agents=c.agents,
        golden=c.golden,
        confirm_at=c.settings.dataset_min_reward,
    )
    episode = outcome.episode
    if as_json:
        print_json({**episode.to_document(), "kind": outcome.kind, "golden_id": _golden_id(outcome)})
        return
    assert episode.label is not None
    lines: list[tuple[str, Any]] = [
        ("Labeled Episode", episode.id),
        ("Agent", episode.agent_id),
        ("Reward", _reward(episode.reward)),
        ("Reason", episode.label.reason or "-"),
        ("Labeled By", episode.label.labeled_by),
        ("Kind", outcome.kind),
    ]
    if outcome.kind == "correction":
        call = episode.training_call()
        assert call is not None
        lines.append(("Agent Called", f"{episode.action.tool} {_args(episode.action.arguments)}"))
        lines.append(("Expected", f"{call[0]} {_args(call[1])}"))
    if outcome.golden is not None:
        lines.append(("Golden Set", f"{outcome.golden.id} ({outcome.golden.source})"))
    print_block(lines)


def _args(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True)


def _golden_id(outcome: labeling.HumanLabelOutcome) -> str | None:
    return outcome.golden.id if outcome.golden is not None else None


def label_batch(
    agent_id: str = typer.Option(..., "--agent-id", help="The agent whose unlabeled episodes to label."),
    auto_label: bool = typer.Option(
        False, "--auto-label", help="Score with an evaluator (required: the only batch mode)."
    ),
    evaluator: str | None = typer.Option(
        None,
        "--evaluator",
        help="task_adherence (the judge model when AZURE_OPENAI_JUDGE_DEPLOYMENT is set, else the rubric) "
        "or rubric. Default $LIGHTNING_EVALUATOR (task_adherence).",
    ),
    min_score: float | None = typer.Option(
        None,
        "--min-score",
        help="Count episodes scoring at/above this as accepted for training. Every scored episode gets "
        "its reward stored either way; build-dataset --min-reward does the filtering.",
    ),
    limit: int | None = typer.Option(None, "--limit", help="Label at most this many (oldest first)."),
    relabel: bool = typer.Option(
        False, "--relabel", help="Also re-score auto-labeled episodes (human labels are never touched)."
    ),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        help="Parallel evaluator calls, 1-64 (default: 8 for the judge, 1 for the rubric).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Auto-label an agent's unlabeled episodes with an evaluator.

    Every scored episode gets its reward stored; --min-score only decides which count as
    accepted for training in the report. Human labels are never touched.
    """
    if not auto_label:
        raise InvalidInput(
            "label-batch needs --auto-label (automatic labeling is the only batch mode); "
            "to label one episode by hand use label-episode"
        )
    c = container()
    if concurrency is not None and not 1 <= concurrency <= 64:
        raise InvalidInput(f"--concurrency must be between 1 and 64, got {concurrency}")
    request = labeling.LabelBatchRequest(agent_id=agent_id, limit=limit, relabel=relabel)
    c.agents.get(agent_id)  # unknown agent: one line listing the registered ones, before any work
    ports = c.labeling_ports(evaluator, concurrency=concurrency)
    total = labeling.labels_needed(c.episodes, agent_id=agent_id, limit=limit, relabel=relabel)
    with _progress_bar(f"Labeling {agent_id}", total) as advance:
        report = labeling.label_batch(
            request, ports, labeling.LabelingPolicy(min_score=min_score), on_progress=advance
        )
    if as_json:
        print_json(report.summary())
    else:
        threshold = f" (>= {min_score:.2f})" if min_score is not None else ""
        print_block(
            [
                ("Agent", agent_id),
                ("Evaluator", f"{report.evaluator} ({report.evaluator_version})"),
                ("Episodes", report.selected),
                ("Labeled", report.labeled),
                ("Skipped", report.skipped),
                ("Failed", report.failed),
                (f"Accepted{threshold}", report.accepted),
                ("Avg Reward", _reward(report.average_score)),
            ]
        )
        for failure in report.failures[:20]:
            sys.stderr.write(f"{failure.kind} {failure.episode_id}: {failure.reason}\n")
        if len(report.failures) > 20:
            sys.stderr.write(f"… and {len(report.failures) - 20} more (use --json for all)\n")
    if report.stopped:
        raise LightningError(report.stopped)


# --- import / export ---------------------------------------------------------------------------
def _reader(path: Path) -> Callable[[], Iterator[str]]:
    def read() -> Iterator[str]:
        try:
            with path.open(encoding="utf-8") as handle:
                yield from handle
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None

    return read


def import_episodes(
    file: Path = typer.Argument(..., help="JSONL file, one episode per line (the workshop's shape)."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing if any line is invalid."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import episodes from a JSONL file. Invalid lines are reported; re-importing adds no duplicates."""
    if not file.is_file():
        raise InvalidInput(f"cannot read {file}: no such file")
    read = _reader(file)
    size = file.stat().st_size
    with _progress_bar(f"Importing {file.name}", size // 400 if size > 200_000 else 0) as advance:
        report = episode_service.import_episodes(
            read, store=container().episodes, strict=strict, on_progress=advance
        )
    for rejected in report.rejected:
        sys.stderr.write(f"{file}:{rejected.line}: {rejected.reason}\n")
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        print_block(
            [
                ("File", file),
                ("Lines", report.lines),
                ("Imported", report.imported),
                ("Already Present", report.already_present),
                ("Rejected", len(report.rejected)),
            ]
        )
    if report.aborted:
        raise InvalidInput(
            f"{len(report.rejected)} invalid line(s) in {file}; nothing imported (--strict). "
            "Fix them or import without --strict"
        )


def export_episodes(
    agent_id: str | None = typer.Option(None, "--agent-id", help="Only this agent's episodes."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here (default stdout)."),
    unlabeled_only: bool = typer.Option(False, "--unlabeled-only", help="Only episodes without a reward."),
    labeled_only: bool = typer.Option(False, "--labeled-only", help="Only labeled episodes."),
    min_reward: float | None = typer.Option(None, "--min-reward", help="Only rewards at/above this."),
    since: str | None = typer.Option(None, "--since", help="From this time on (ISO 8601)."),
    until: str | None = typer.Option(None, "--until", help="Before this time (ISO 8601)."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many."),
) -> None:
    """Export episodes as JSONL (the workshop's shape), oldest first, streaming."""
    if min_reward is not None:
        labeling.check_min_score(min_reward)
    query = episode_service.episode_query(
        agent_id=agent_id,
        unlabeled_only=unlabeled_only,
        labeled_only=labeled_only,
        since=parse_datetime(since, flag="--since"),
        until=parse_datetime(until, flag="--until"),
        limit=limit,
        min_reward=min_reward,
    )
    store = container().episodes
    if output is None:
        episode_service.export_episodes(store, query, write=sys.stdout.write)
        return
    partial = output.with_name(output.name + ".partial")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as handle:
            count = episode_service.export_episodes(store, query, write=handle.write)
        os.replace(partial, output)  # readers never see half a file
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from None
    sys.stdout.write(f"Exported {count} episode(s) to {output}\n")


def migrate_store(
    agent_id: str | None = typer.Option(None, "--agent-id", help="Only this agent's episodes."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rewrite episodes stored before the label history in today's shape (Cosmos DB; SQLite migrates
    when it opens). Safe to run again and beside the running loop: each rewrite is etag-guarded."""
    from lightning.ports.episodes import MigratesItems

    c = container()
    store = c.episodes
    backend = c.settings.lightning_store.split(":", 1)[0]  # "sqlite" or "cosmos"
    if isinstance(store, MigratesItems):
        rewritten = store.migrate_items(agent_id=agent_id)
        note = "old documents read either way; rewritten ones also take their place in the review queue"
    else:
        rewritten = 0
        note = f"the {backend} store migrates its schema when it opens: nothing to rewrite"
    if as_json:
        print_json({"store": backend, "agent_id": agent_id, "rewritten": rewritten, "note": note})
        return
    print_block([("Store", backend), ("Agent", agent_id or "all"), ("Rewritten", rewritten), ("Note", note)])


def register(app: typer.Typer) -> None:
    app.command("list-episodes")(list_episodes)
    app.command("show-episode")(show_episode)
    app.command("label-episode")(label_episode)
    app.command("label-batch")(label_batch)
    app.command("import-episodes")(import_episodes)
    app.command("export-episodes")(export_episodes)
    app.command("migrate-store")(migrate_store)
