"""CLI commands for ground truth: review-queue, judge-report, import-golden, list-golden.

Thin: parse, call one service (``lightning.services.review``, ``calibration``, ``golden``), print a
table or ``--json``. Every figure printed from the judge says so; ground truth is named as such.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from lightning.bootstrap import calibration_policy
from lightning.commands._common import container, current_user, print_block, print_json, print_table
from lightning.domain.errors import InvalidInput
from lightning.domain.model import Rate
from lightning.services import calibration, golden, review


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def review_queue(
    agent_id: str = typer.Option(..., "--agent-id", help="The agent whose episodes to review."),
    limit: int = typer.Option(20, "--limit", min=1, max=review.MAX_LIMIT, help="How many to list."),
    tool: str | None = typer.Option(None, "--tool", help="Only episodes where the agent called this tool."),
    as_json: bool = typer.Option(False, "--json", help="Print the items as JSON."),
) -> None:
    """The episodes a person should label next, where the judge is most likely wrong (never ones a
    person already labeled). Label them with label-episode --expected-tool/--expected-arguments."""
    c = container()
    items = review.review_queue(
        review.ReviewRequest(agent_id=agent_id, limit=limit, tool=tool),
        episodes=c.episodes,
        agents=c.agents,
        policy=review.ReviewPolicy(min_reward=c.settings.dataset_min_reward),
    )
    if as_json:
        print_json({"agent_id": agent_id, "count": len(items), "items": items})
        return
    if not items:
        typer.echo(f"nothing to review for {agent_id}: every episode is labeled by a person, or none exist")
        return
    print_table(
        ["#", "Episode", "Request", "Agent's Tool", "Judge Score", "Why"],
        [
            [
                str(rank),
                item.id,
                _short(item.query),
                item.tool or "-",
                "-" if item.judge_score is None else f"{item.judge_score:.2f}",
                "; ".join(item.why[:2]),
            ]
            for rank, item in enumerate(items, start=1)
        ],
        title=f"Review queue of {agent_id} (most informative first)",
    )


def _rate(rate: Rate) -> str:
    if rate.value is None:
        return "-"
    return f"{rate.value:.3f} [{rate.low:.3f}, {rate.high:.3f}] (n={rate.n})"


def _estimate(estimate: calibration.Estimate) -> str:
    if estimate.value is None:
        return "-"
    return f"{estimate.value:.3f} [{(estimate.low or 0):.3f}, {(estimate.high or 0):.3f}]"


def judge_report(
    agent_id: str = typer.Option(..., "--agent-id", help="The agent whose judge to check."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """How far the judge's labels agree with people and golden answers, and whether the loop trusts it."""
    c = container()
    c.agents.get(agent_id)
    report = calibration.judge_report(
        agent_id, episodes=c.episodes, golden=c.golden, policy=calibration_policy(c.settings)
    )
    if as_json:
        print_json(report)
        return
    print_block(
        [
            ("Agent", agent_id),
            ("Judge", ", ".join(report.evaluators) or "-"),
            ("Accept Line", f"reward >= {report.min_reward:g}"),
            (
                "Compared",
                f"{report.compared} ({report.from_human} human labels, {report.from_golden} golden answers)",
            ),
            ("Agreement", _rate(report.agreement)),
            ("Precision", _rate(report.precision)),
            ("Recall", _rate(report.recall)),
            ("Cohen Kappa", _estimate(report.cohen_kappa)),
            ("Rank Correlation", _estimate(report.rank_correlation)),
            ("Trusted", "yes" if report.trust.trusted else "NO"),
            ("Trust", report.trust.reason),
        ]
    )
    if report.tool_confusion:
        truths = sorted({t for row in report.tool_confusion.values() for t in row})
        print_table(
            ["Judge expected ↓ / right tool →", *truths],
            [[judge, *[str(row.get(t, 0)) for t in truths]] for judge, row in report.tool_confusion.items()],
            title="Tool confusion (episodes where the right tool is known)",
        )


def import_golden(
    file: Path = typer.Argument(
        ..., help='JSONL: {"query", "expected_tool", "expected_arguments"[, "context"]}'
    ),
    agent_id: str = typer.Option(..., "--agent-id", help="The agent the answers are for."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing if any line is bad."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import known-right answers into an agent's golden set (the gate's and evaluate --golden's ground truth)."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    c = container()
    report = golden.import_golden(
        lines,
        agent_id=agent_id,
        agents=c.agents,
        golden=c.golden,
        created_by=current_user(c.settings.lightning_user),
        strict=strict,
    )
    for bad in report.bad:
        sys.stderr.write(f"{file}:{bad.line}: {bad.error}\n")
    if as_json:
        print_json(report)
    else:
        print_block(
            [
                ("File", file),
                ("Agent", agent_id),
                ("Lines", report.lines),
                ("Stored", report.stored),
                ("Bad Lines", len(report.bad)),
                ("Golden Set", f"{report.total} examples"),
            ]
        )
    if report.aborted:
        raise InvalidInput(f"{len(report.bad)} bad line(s) in {file}; nothing imported (--strict)")
    if report.bad and not report.stored:
        raise InvalidInput(f"every line of {file} is bad; nothing imported")


def list_golden(
    agent_id: str = typer.Option(..., "--agent-id"),
    limit: int | None = typer.Option(None, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """An agent's golden set: requests with their known-right call, and where each came from."""
    c = container()
    examples = golden.list_golden(agent_id, agents=c.agents, golden=c.golden, limit=limit)
    if as_json:
        print_json({"agent_id": agent_id, "count": len(examples), "examples": examples})
        return
    if not examples:
        typer.echo(f"no golden set for {agent_id} yet: import-golden FILE --agent-id {agent_id}")
        return
    rows: list[list[Any]] = [
        [
            e.id,
            _short(e.query),
            e.expected_tool,
            json.dumps(e.expected_arguments, ensure_ascii=False, sort_keys=True),
            e.source,
            e.created_by,
        ]
        for e in examples
    ]
    print_table(
        ["Id", "Request", "Expected Tool", "Expected Arguments", "Source", "By"],
        rows,
        title=f"Golden set of {agent_id} ({len(examples)})",
    )


def register(app: typer.Typer) -> None:
    app.command("review-queue")(review_queue)
    app.command("judge-report")(judge_report)
    app.command("import-golden")(import_golden)
    app.command("list-golden")(list_golden)
