"""CLI commands for model versions: promote-model, list-models, rollback, evaluate.

Thin: parse, call one service in ``lightning.services.promotion`` / ``lightning.services.evaluation``,
print the decision and its numbers (or ``--json``). A refused promotion or a failed rollout exits 1
after printing what happened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from lightning.bootstrap import promotion_policy
from lightning.commands._common import container, current_user, print_block, print_json, print_table
from lightning.domain.errors import InvalidInput
from lightning.domain.model import EvalRequest, EvaluationSummary, ModelVersion, Rate
from lightning.services import evaluation
from lightning.services import promotion as service


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _rate(rate: Rate) -> str:
    """A proportion with its 95% interval, e.g. ``66.3% [55.4%, 75.8%] (n=80)``."""
    if rate.value is None:
        return "-"
    return f"{_pct(rate.value)} [{_pct(rate.low)}, {_pct(rate.high)}] (n={rate.n})"


def _summary_line(summary: EvaluationSummary) -> str:
    gt = summary.ground_truth
    truth = (
        f"ground truth: tool accuracy {_rate(gt.tool_accuracy)}, argument match {_rate(gt.argument_exact_match)}; "
        if gt.n
        else "no ground truth; "
    )
    return (
        truth + f"judge-estimated: tool accuracy {_pct(summary.judge.tool_accuracy.value)}, "
        f"avg reward {_num(summary.judge.avg_reward)}; observed error rate "
        + (_rate(summary.error_rate) if summary.error_rate.value is not None else f"- (n={summary.examples})")
    )


def summary_json(summary: EvaluationSummary) -> dict[str, Any]:
    """One model's evaluation as ``evaluate --json`` prints it: numbers with their intervals beside them,
    grouped by where they come from."""

    def rate(name: str, value: Rate) -> dict[str, Any]:
        return {name: value.value, f"{name}_ci": [value.low, value.high] if value.value is not None else None}

    gt, judge = summary.ground_truth, summary.judge
    return {
        "model": summary.model,
        "examples": summary.examples,
        "ground_truth": {
            "source": "ground_truth",
            "golden_set": summary.golden_set,
            "n": gt.n,
            **rate("tool_accuracy", gt.tool_accuracy),
            **rate("argument_exact_match", gt.argument_exact_match),
            "excluded_overlap": summary.excluded_overlap,
        },
        "judge": {
            "source": "judge",
            "evaluator": judge.evaluator,
            "n": judge.n,
            **rate("tool_accuracy", judge.tool_accuracy),
            "avg_reward": judge.avg_reward,
            **rate("completeness", judge.completeness),
        },
        "observed": {"source": "observed", **rate("error_rate", summary.error_rate)},
        "details": summary.details,
    }


def _gate_basis(candidate: EvaluationSummary, ground_truth: bool) -> str:
    overlap = (
        f"; {candidate.excluded_overlap} golden request(s) left out: the candidate trained on them"
        if candidate.excluded_overlap
        else ""
    )
    if ground_truth:
        return f"ground truth first: {candidate.golden_set or 'known answers'}, n={candidate.ground_truth.n}{overlap}"
    return (
        f"judge-only ({candidate.ground_truth.n} requests with known answers; import a golden set or review "
        f"episodes to gate on ground truth){overlap}"
    )


def _env_text(env: dict[str, str | None]) -> str:
    return " ".join(f"{k}={v}" if v is not None else f"{k}-" for k, v in env.items())


NOT_APPLIED = "not applied (no Kubernetes cluster configured); the local agent follows the registry"


def _rollout_text(outcome: service.PromotionOutcome) -> str:
    """The env set on the agent's Deployment, or why no Deployment was patched (never a line that looks
    applied when nothing was)."""
    if outcome.rollout is not None and not outcome.rollout.applied:
        return NOT_APPLIED
    if outcome.rollout is None and outcome.action == "promoted":
        return "not applied (ROLLOUT_ENABLED=false)"
    prefix = "would set " if outcome.action == "dry_run" else ""
    return f"{prefix}{outcome.target} {_env_text(outcome.env)}"


def _outcome_lines(outcome: service.PromotionOutcome, model_name: str) -> list[tuple[str, Any]]:
    version = outcome.version
    decision = outcome.decision
    lines: list[tuple[str, Any]] = [("Model", model_name)]
    if version is not None:
        lines += [("Version", f"{version.id}"), ("Deployment", version.deployment_name or "-")]
        if version.run_id:
            lines.append(
                (
                    "Lineage",
                    f"run {version.run_id} → dataset {version.dataset_name} ({(version.dataset_sha256 or '')[:12]}) → {version.episode_count} episodes",
                )
            )
    if decision is not None:
        gate = "forced (--force)" if decision.forced else ("passed" if decision.promote else "refused")
        lines.append(("Gate", gate))
        if decision.candidate is not None and not decision.forced:
            lines.append(("Gate Basis", _gate_basis(decision.candidate, decision.ground_truth)))
        if decision.candidate is not None:
            lines.append(("Candidate", _summary_line(decision.candidate)))
        if decision.baseline is not None:
            lines.append((f"Baseline ({decision.baseline.model})", _summary_line(decision.baseline)))
        if decision.candidate is not None:
            lines.append(("Tolerance", f"{decision.tolerance:g}"))
        lines.append(("Reason", decision.reason))
    if outcome.target and outcome.action in ("promoted", "rollout_failed", "diverged", "dry_run"):
        lines.append(("Rollout", _rollout_text(outcome)))
    if version is not None and outcome.action != "dry_run":
        lines.append(("Status", version.status))
    lines.append(("Result", outcome.message))
    return lines


def promote_model(
    agent_id: str = typer.Option(..., "--agent-id", help="Agent the model was fine-tuned for."),
    model_name: str = typer.Option(
        ..., "--model-name", help="Fine-tuned model, e.g. ft:gpt-4o-mini:autonomous-agent:abc123."
    ),
    mark_active: bool = typer.Option(
        False, "--mark-active", help="Activate it and roll it out to the agent."
    ),
    force: bool = typer.Option(
        False, "--force", help="Skip the promotion gate (recorded); allows models without a run."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Evaluate and print what would happen; change nothing."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Register, deploy, gate and (with --mark-active) roll out a fine-tuned model."""
    c = container()
    request = service.PromotionRequest(
        agent_id=agent_id,
        model_name=model_name,
        mark_active=mark_active,
        force=force,
        dry_run=dry_run,
        promoted_by=current_user(c.settings.lightning_user),
    )
    outcome = service.promote_model(request, c.promotion_ports(), promotion_policy(c.settings))
    if as_json:
        print_json(outcome)
    else:
        print_block(_outcome_lines(outcome, model_name))
    if outcome.action in ("rejected", "rollout_failed", "diverged"):
        raise typer.Exit(1)


def _gate(version: ModelVersion) -> str:
    decision = version.decision
    if decision is None:
        return "-"
    return "forced" if decision.forced else ("passed" if decision.promote else "refused")


def _version_row(version: ModelVersion) -> list[Any]:
    evaluation_summary = version.evaluation
    return [
        f"v{version.version}",
        version.model_name,
        version.deployment_name or "-",
        version.status,
        "*" if version.active else "",
        _gate(version),
        f"{_pct(evaluation_summary.ground_truth.tool_accuracy.value)} / "
        f"{_pct(evaluation_summary.judge.tool_accuracy.value)}"
        if evaluation_summary
        else "-",
        _num(evaluation_summary.judge.avg_reward) if evaluation_summary else "-",
        version.dataset_name or "-",
        f"{version.promoted_at:%Y-%m-%d %H:%M}" if version.promoted_at else "-",
        version.promoted_by or "-",
    ]


def list_models(
    agent_id: str = typer.Option(..., "--agent-id"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Model versions of an agent, newest first; the active one is marked."""
    c = container()
    c.agents.get(agent_id)  # an unknown agent is an error, not an empty list
    versions = c.models.list(agent_id)
    if as_json:
        print_json([{**v.model_dump(mode="json"), "active": v.active} for v in versions])
        return
    if not versions:
        typer.echo(f"no model versions for {agent_id} yet (promote one with promote-model)")
        return
    print_table(
        [
            "Version",
            "Model",
            "Deployment",
            "Status",
            "Active",
            "Gate",
            "Tool Acc truth/judge",
            "Reward (judge)",
            "Dataset",
            "Promoted",
            "By",
        ],
        [_version_row(v) for v in versions],
        title=f"Models of {agent_id}",
    )


def rollback(
    agent_id: str = typer.Option(..., "--agent-id"),
    to: str | None = typer.Option(None, "--to", help="Version to return to (vN, model or deployment name)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Return the agent to the previous version (or --to VERSION; the base model when there is none)."""
    c = container()
    policy = promotion_policy(c.settings)
    outcome = service.rollback(
        service.RollbackRequest(agent_id=agent_id, to=to, by=current_user(c.settings.lightning_user)),
        c.promotion_ports(),
        policy,
    )
    if as_json:
        print_json(outcome)
    else:
        target = outcome.to_version
        print_block(
            [
                ("Agent", agent_id),
                (
                    "From",
                    f"{outcome.from_version.id} ({outcome.from_version.served_name})"
                    if outcome.from_version
                    else "-",
                ),
                (
                    "To",
                    f"{target.id} ({target.served_name})" if target else f"base model ({policy.base_model})",
                ),
                ("Env", _env_text(outcome.env)),
                ("Result", outcome.message),
            ]
        )
    if not outcome.ok:
        raise typer.Exit(1)


def _read_queries(path: Path) -> list[EvalRequest]:
    """JSONL (``{"query", "tool"|"expected_tool", "arguments"|"expected_arguments"}``) or one query per line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read --queries {path}: {exc.strerror or exc}", field="queries") from None
    requests: list[EvalRequest] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            if stripped.startswith("{"):
                item = json.loads(stripped)
                requests.append(
                    EvalRequest(
                        query=item.get("query", ""),
                        expected_tool=item.get("expected_tool", item.get("tool")),
                        expected_arguments=item.get("expected_arguments", item.get("arguments")),
                        source="queries",
                        truth="ground_truth"
                        if item.get("expected_tool", item.get("tool")) is not None
                        else None,
                    )
                )
            else:
                requests.append(EvalRequest(query=stripped, source="queries"))
        except (ValueError, ValidationError, AttributeError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise InvalidInput(f"--queries {path} line {number}: {reason}", field="queries") from None
    if not requests:
        raise InvalidInput(f"--queries {path} holds no queries", field="queries")
    return requests


def evaluate(
    agent_id: str = typer.Option(..., "--agent-id"),
    models: list[str] = typer.Option(
        ..., "--model", help="Model or deployment to evaluate (repeat to compare)."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Evaluate on this dataset's validation split."
    ),
    queries: Path | None = typer.Option(
        None, "--queries", help="JSONL ({query, tool, arguments}) or text file."
    ),
    generate: int | None = typer.Option(
        None, "--generate", min=1, help="N generated requests with known answers."
    ),
    golden: bool = typer.Option(
        False,
        "--golden",
        help="Evaluate on the agent's golden set (ground truth; training overlap left out).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for --generate."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate at most N requests."),
    evaluator_name: str | None = typer.Option(
        None, "--evaluator", help="task_adherence (default) or rubric."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replay held-out requests against a model and score the answers (the promotion gate's check).

    Without --dataset/--queries/--generate: the agent's latest dataset validation split plus recent
    labeled episodes it does not contain."""
    if sum(x is not None for x in (dataset, queries, generate)) + golden > 1:
        raise InvalidInput("choose one of --dataset, --queries, --generate and --golden")
    c = container()
    agent = c.agents.get(agent_id)
    given: list[EvalRequest] | None = None
    golden_set: str | None = None
    overlap = 0
    if queries is not None:
        given = _read_queries(queries)
    elif generate is not None:
        from lightning.agent.queries import generate_queries

        given = [
            EvalRequest(
                query=s.query,
                expected_tool=s.tool,
                expected_arguments=dict(s.arguments),
                source="generated",
                truth="ground_truth",
            )
            for s in generate_queries(generate, seed=seed, agent_id=agent_id)
        ]
    elif golden:
        golden_eval = evaluation.golden_set_requests(
            agent_id=agent_id,
            model_names=models,
            golden=c.golden,
            models=c.models,
            runs=c.runs,
            datasets=c.datasets,
            blobs=c.blobs,
        )
        given, golden_set, overlap = (
            list(golden_eval.requests),
            golden_eval.golden_set,
            golden_eval.excluded_overlap,
        )
    requests = evaluation.select_requests(
        agent_id=agent_id,
        episodes=c.episodes,
        datasets=c.datasets,
        dataset_name=dataset,
        queries=given,
        recent=c.settings.gate_recent_episodes,
        min_reward=c.settings.dataset_min_reward,
        limit=limit,
    )
    eval_set = evaluation.EvalSet(requests, golden_set, overlap)
    ports = c.evaluation_ports(evaluator_name)
    summaries = [
        evaluation.evaluate_model(model=model, agent=agent, eval_set=eval_set, ports=ports)
        for model in models
    ]
    if as_json:
        print_json({"models": [summary_json(summary) for summary in summaries]})
        return
    rows = [
        ["Examples", *[str(s.examples) for s in summaries]],
        ["Requests With Known Answers (ground truth)", *[str(s.ground_truth.n) for s in summaries]],
        ["Tool Selection Accuracy (ground truth)", *[_rate(s.ground_truth.tool_accuracy) for s in summaries]],
        [
            "Argument Exact Match (ground truth)",
            *[_rate(s.ground_truth.argument_exact_match) for s in summaries],
        ],
        ["Tool Selection Accuracy (judge-estimated)", *[_rate(s.judge.tool_accuracy) for s in summaries]],
        ["Response Completeness (judge-estimated)", *[_rate(s.judge.completeness) for s in summaries]],
        ["Average Reward Score (judge-estimated)", *[_num(s.judge.avg_reward) for s in summaries]],
        ["Error Rate (observed)", *[_rate(s.error_rate) for s in summaries]],
    ]
    title = f"Evaluation of {agent_id} (judge: {summaries[0].judge.evaluator})"
    if golden_set:
        title += f" on {golden_set}"
    print_table(["Metric", *models], rows, title=title)
    if overlap:
        typer.echo(
            f"note: {overlap} golden request(s) left out: a model evaluated here trained on them", err=True
        )
    if not summaries[0].details.get("tools_run"):
        typer.echo(
            "note: tools were not run (the agent package is not installed): completeness is not measured",
            err=True,
        )


def register(app: typer.Typer) -> None:
    app.command("promote-model")(promote_model)
    app.command("list-models")(list_models)
    app.command("rollback")(rollback)
    app.command("evaluate")(evaluate)
