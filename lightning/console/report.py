"""The loop's HTML report: one self-contained file a person can open (the demo writes it at its end).

``render_report`` draws what ``loop_status`` (``lightning/services/status.py`` — the console's own source)
says about one agent: the loop's timeline, every gate decision on the golden set (ground truth) with
95% intervals and the active model against the one before it, and the judge report (the judge's
estimates against people and golden answers, with the trust floor). Charts are inline SVG; every text
from the store is escaped. Ground-truth and judge-estimated figures are named as such everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from pydantic import BaseModel, Field

from lightning.services.status import LoopStatus

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; margin: 0;
       background: #f4f6f9; }
main { max-width: 1080px; margin: 0 auto; padding: 1.5em; }
section { background: #fff; border: 1px solid #d9dee5; border-radius: 6px; padding: 1em 1.3em; margin: 1em 0; }
h1 { font-size: 1.5em; margin: .2em 0; } h2 { font-size: 1.2em; margin-top: 0; } h3 { font-size: 1em; }
.muted { color: #5f6b7a; } .ok { color: #1b7a3d; } .bad { color: #b3261e; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { text-align: left; border-bottom: 1px solid #d9dee5; padding: .3em .6em; vertical-align: top; }
th { font-size: .85em; color: #5f6b7a; }
td.num { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: nowrap; }
ol.timeline { list-style: none; padding: 0; border-left: 3px solid #2456c6; margin-left: .5em; }
ol.timeline li { margin: 0 0 .8em; padding-left: 1em; position: relative; }
ol.timeline li::before { content: ""; position: absolute; left: -.55em; top: .45em; width: .7em; height: .7em;
                         border-radius: 50%; background: #2456c6; }
ol.timeline time { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; color: #5f6b7a; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1.2em; }
.facts dt { color: #5f6b7a; } .facts dd { margin: 0; }
svg text { font: 11px system-ui, sans-serif; fill: #5f6b7a; }
svg .value { fill: #1d2330; } svg .grid { stroke: #e3e7ec; } svg .whisker { stroke: #1d2330; stroke-width: 1.5; }
svg .before { fill: #9aa7b8; } svg .after { fill: #2456c6; } svg .point { fill: #2456c6; }
svg .axis { stroke: #c5ccd6; stroke-width: 2; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em; }
"""


class TimelineMark(BaseModel):
    """A step the caller took (the demo's), placed on the timeline beside what the store records."""

    at: datetime
    title: str
    detail: str = Field(default="", description="Words only; figures come from the store.")


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _rate(rate: dict[str, Any] | None, *, percent: bool = True) -> str:
    if not rate or rate.get("value") is None:
        return "–"
    show = _pct if percent else (lambda v: "–" if v is None else f"{v:.3f}")
    interval = f" [{show(rate.get('low'))}, {show(rate.get('high'))}]" if rate.get("low") is not None else ""
    n = f" (n={rate['n']})" if "n" in rate else ""
    return f"{show(rate['value'])}{interval}{n}"


def _when(value: Any) -> str:
    if value is None:
        return "–"
    moment = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# --- charts -----------------------------------------------------------------------------------------
def _bars_svg(title: str, groups: list[tuple[str, list[tuple[str, dict[str, Any], str]]]]) -> str:
    """Grouped bars (0–100%) with 95% interval whiskers; groups: (label, [(name, rate, css class)])."""
    legend = [(name, cls) for name, _, cls in (groups[0][1] if groups else [])]
    width, top, bottom, left, right = 620, 22 + 16 * len(legend), 40, 44, 12
    height = top + 180 + bottom
    plot_h, plot_w = 180, width - left - right

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, v)))

    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">'
    ]
    parts.append(f"<title>{_e(title)}</title>")
    for i, (name, cls) in enumerate(legend):
        parts.append(f'<rect x="{left}" y="{4 + 16 * i}" width="12" height="12" class="{cls}"/>')
        parts.append(f'<text x="{left + 18}" y="{14 + 16 * i}">{_e(name)}</text>')
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{round(tick * 100)}%</text>'
        )
    group_w = plot_w / max(len(groups), 1)
    for g, (label, bars) in enumerate(groups):
        bar_w = min(60.0, (group_w - 30) / max(len(bars), 1))
        start = left + g * group_w + (group_w - bar_w * len(bars)) / 2
        for b, (name, rate, cls) in enumerate(bars):
            x = start + b * bar_w
            value = rate.get("value") if rate else None
            if value is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{y(0) - 6:.1f}" text-anchor="middle">n/a</text>'
                )
                continue
            parts.append(
                f'<rect x="{x + 3:.1f}" y="{y(value):.1f}" width="{bar_w - 6:.1f}" height="{y(0) - y(value):.1f}" '
                f'class="{cls}"><title>{_e(name)}: {_e(_rate(rate))}</title></rect>'
            )
            low, high = rate.get("low"), rate.get("high")
            if low is not None and high is not None:
                cx = x + bar_w / 2
                parts.append(
                    f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" class="whisker"/>'
                )
                for end in (low, high):
                    parts.append(
                        f'<line x1="{cx - 6:.1f}" x2="{cx + 6:.1f}" y1="{y(end):.1f}" y2="{y(end):.1f}" class="whisker"/>'
                    )
            label_y = y(max(value, high if high is not None else value)) - 6
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{label_y:.1f}" text-anchor="middle" class="value">'
                f"{100 * value:.1f}</text>"
            )
        parts.append(
            f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{height - bottom + 18}" text-anchor="middle">'
            f"{_e(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _forest_svg(rows: list[tuple[str, dict[str, Any], float]]) -> str:
    """Each figure as a point with its 95% interval on its own scale ([0, 1] or [-1, 1])."""
    width, row_h, label_w = 620, 26, 150
    height = row_h * len(rows) + 24
    plot_w = width - label_w - 20
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="judge figures">'
    ]
    for i, (name, figure, low_bound) in enumerate(rows):
        cy = 14 + i * row_h

        def x(v: float, low_bound: float = low_bound) -> float:
            return label_w + plot_w * (max(low_bound, min(1.0, v)) - low_bound) / (1.0 - low_bound)

        parts.append(f'<text x="0" y="{cy + 4}">{_e(name)}</text>')
        parts.append(f'<line x1="{x(low_bound):.1f}" x2="{x(1.0):.1f}" y1="{cy}" y2="{cy}" class="axis"/>')
        parts.append(f'<text x="{x(low_bound):.1f}" y="{cy + 16}" text-anchor="middle">{low_bound:g}</text>')
        parts.append(f'<text x="{x(1.0):.1f}" y="{cy + 16}" text-anchor="middle">1</text>')
        value = figure.get("value") if figure else None
        if value is None:
            continue
        if figure.get("low") is not None and figure.get("high") is not None:
            parts.append(
                f'<line x1="{x(figure["low"]):.1f}" x2="{x(figure["high"]):.1f}" y1="{cy}" y2="{cy}" class="whisker"/>'
            )
        parts.append(f'<circle cx="{x(value):.1f}" cy="{cy}" r="5" class="point"/>')
    parts.append("</svg>")
    return "".join(parts)


# --- sections ----------------------------------------------------------------------------------------
def _timeline(status: LoopStatus, marks: Sequence[TimelineMark]) -> str:
    events: list[tuple[datetime, str, str]] = [(m.at, m.title, m.detail) for m in marks]
    for dataset in status.datasets:
        moment = _moment(dataset.get("created_at"))
        if moment is not None:
            people = f"{dataset['corrected_examples']} corrected and {dataset['confirmed_examples']} confirmed by people"
            only = "; from human labels only (the judge was not trusted)" if dataset.get("human_only") else ""
            events.append(
                (
                    moment,
                    f"Dataset {dataset['name']} built",
                    f"{dataset['examples']} examples, {people}{only}",
                )
            )
    for run in status.runs:
        moment = _moment(run.get("created_at"))
        if moment is not None:
            result = run.get("fine_tuned_model") or run.get("error") or "-"
            events.append(
                (
                    moment,
                    f"Fine-tune {run['job_id'] or run['id']}: {run['state']}",
                    f"on {run['dataset_name']} → {result}",
                )
            )
    for model in status.models:
        moment = _moment(model.get("promoted_at"))
        gate = model.get("gate")
        if moment is not None and gate is not None:
            verdict = "forced" if gate["forced"] else ("passed" if gate["promote"] else "refused")
            basis = "ground truth first" if gate["ground_truth"] else "judge only"
            events.append(
                (
                    moment,
                    f"v{model['version']} {model['model_name']}: gate {verdict} ({basis})",
                    gate["reason"],
                )
            )
    events.sort(key=lambda event: event[0])
    items = "".join(
        f"<li><time>{_e(_when(at))}</time><br><strong>{_e(title)}</strong>"
        + (f'<br><span class="muted">{_e(detail)}</span>' if detail else "")
        + "</li>"
        for at, title, detail in events
    )
    return f'<section id="timeline"><h2>The loop\'s timeline</h2><ol class="timeline">{items}</ol></section>'


def _decision(title: str, candidate: dict[str, Any], baseline: dict[str, Any], note: str = "") -> str:
    gt_c, gt_b = candidate["ground_truth"], baseline["ground_truth"]
    name_c, name_b = candidate["model"], baseline["model"]
    if not gt_c.get("n"):
        return (
            f"<h3>{_e(title)}</h3><p>No ground truth: this gate had no golden set. Judge-estimated tool "
            f"accuracy {_e(_rate(candidate['judge']['tool_accuracy']))} vs {_e(_rate(baseline['judge']['tool_accuracy']))}.</p>"
        )
    chart = _bars_svg(
        f"{title}: ground truth on the golden set",
        [
            (
                "tool accuracy (ground truth)",
                [
                    (f"before: {name_b}", gt_b["tool_accuracy"], "before"),
                    (f"after: {name_c}", gt_c["tool_accuracy"], "after"),
                ],
            ),
            (
                "argument exact match (ground truth)",
                [
                    (f"before: {name_b}", gt_b["argument_exact_match"], "before"),
                    (f"after: {name_c}", gt_c["argument_exact_match"], "after"),
                ],
            ),
            (
                "error rate (observed)",
                [
                    (f"before: {name_b}", baseline["error_rate"], "before"),
                    (f"after: {name_c}", candidate["error_rate"], "after"),
                ],
            ),
        ],
    )
    rows = [
        ("Tool accuracy", "ground truth", gt_b["tool_accuracy"], gt_c["tool_accuracy"]),
        ("Argument exact match", "ground truth", gt_b["argument_exact_match"], gt_c["argument_exact_match"]),
        ("Error rate", "observed", baseline["error_rate"], candidate["error_rate"]),
        (
            "Tool accuracy",
            "judge-estimated",
            baseline["judge"]["tool_accuracy"],
            candidate["judge"]["tool_accuracy"],
        ),
    ]
    table = "".join(
        f'<tr><td>{_e(metric)}</td><td>{_e(source)}</td><td class="num">{_e(_rate(before))}</td>'
        f'<td class="num">{_e(_rate(after))}</td></tr>'
        for metric, source, before, after in rows
    )
    golden = candidate.get("golden_set") or "known answers"
    overlap = candidate.get("excluded_overlap") or 0
    excluded = (
        f"; {overlap} golden requests left out because the candidate trained on them" if overlap else ""
    )
    return (
        f'<h3>{_e(title)}</h3><p class="muted">Golden set: {_e(golden)}, n={gt_c["n"]}{_e(excluded)}. '
        f"Whiskers and brackets are 95% intervals.{_e(note)}</p>{chart}"
        f"<table><thead><tr><th>Figure</th><th>Source</th><th>Before: {_e(name_b)}</th><th>After: {_e(name_c)}</th></tr></thead>"
        f"<tbody>{table}</tbody></table>"
    )


def _before_after(status: LoopStatus) -> str:
    blocks = []
    pair = status.before_after
    if pair is not None:
        blocks.append(
            _decision(
                f"Active model {pair.active} against the previous {pair.previous}",
                pair.active_figures.model_dump(mode="json"),
                pair.previous_figures.model_dump(mode="json"),
            )
        )
    for model in status.models:
        gate = model.get("gate") or {}
        if gate.get("candidate") and gate.get("baseline") and not model.get("active"):
            verdict = "promoted" if gate["promote"] else "refused"
            blocks.append(
                _decision(
                    f"v{model['version']} ({verdict}) against {gate['baseline']['model']}",
                    gate["candidate"],
                    gate["baseline"],
                    f" Gate: {gate['reason']}",
                )
            )
    if not blocks:
        blocks.append("<p>No model was promoted over another yet.</p>")
    return (
        '<section id="before-after"><h2>Before / after on the golden set (ground truth)</h2>'
        + "".join(blocks)
        + "</section>"
    )


def _judge(status: LoopStatus) -> str:
    report = status.judge.model_dump(mode="json")
    trust = report["trust"]
    figures = [
        ("agreement", report["agreement"], True),
        ("precision", report["precision"], True),
        ("recall", report["recall"], True),
        ("cohen kappa", report["cohen_kappa"], False),
        ("rank correlation", report["rank_correlation"], False),
    ]
    rows = "".join(
        f'<tr><td>{_e(name)}</td><td class="num">{_e(_rate(figure, percent=False))}</td></tr>'
        for name, figure, _ in figures
    )
    forest = _forest_svg([(name, figure, 0.0 if rate else -1.0) for name, figure, rate in figures])
    confusion = report["tool_confusion"]
    truths = sorted({t for row in confusion.values() for t in row})
    matrix = ""
    if truths:
        head = "".join(f"<th>{_e(t)}</th>" for t in truths)
        body = "".join(
            f"<tr><th>{_e(judge)}</th>"
            + "".join(
                f'<td class="num {"ok" if judge == t else ("bad" if row.get(t) else "")}">{row.get(t, 0)}</td>'
                for t in truths
            )
            + "</tr>"
            for judge, row in confusion.items()
        )
        matrix = f"<h3>Tool confusion: the judge's expected tool (rows) against the right tool (columns)</h3><table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"
    verdict = (
        '<strong class="ok">trusted</strong>'
        if trust["trusted"]
        else '<strong class="bad">NOT trusted</strong>'
    )
    return (
        '<section id="judge"><h2>The judge against people and golden answers</h2>'
        f"<p>The judge is an estimate; people's labels and golden answers are the truth. Compared: {report['compared']} "
        f"episodes ({report['from_human']} human labels, {report['from_golden']} golden answers); the judge accepts at "
        f"reward ≥ {report['min_reward']:g} ({_e(', '.join(report['evaluators']) or '-')}).</p>"
        f"<p>The loop's verdict: {verdict}: {_e(trust['reason'])} (trust floor: precision ≥ {trust['min_precision']:g} "
        f"once {trust['min_compared']} episodes are compared).</p>"
        f"<table><thead><tr><th>Figure</th><th>Value [95% interval] (n)</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{forest}{matrix}</section>"
    )


def render_report(
    status: LoopStatus,
    *,
    generated_at: datetime,
    marks: Sequence[TimelineMark] = (),
    title: str = "Lightning Loop report",
    explore: str | None = None,
) -> str:
    """The report as one HTML document (see the module docstring); ``explore`` is a command to show."""
    active = status.active_version or "none (the base model)"
    trust = status.judge.trust
    summary = (
        '<section id="summary"><dl class="facts">'
        f"<dt>Agent</dt><dd>{_e(status.agent_id)}</dd>"
        f"<dt>Episodes</dt><dd>{status.episodes:,}</dd>"
        f"<dt>Labeled by people</dt><dd>{status.human_labeled:,}</dd>"
        f"<dt>Golden examples</dt><dd>{status.golden_examples:,}</dd>"
        f"<dt>Active version</dt><dd>{_e(active)}</dd>"
        f"<dt>Judge</dt><dd>{'trusted' if trust.trusted else 'NOT trusted'}</dd>"
        "</dl>" + (f"<p>Explore further: <code>{_e(explore)}</code></p>" if explore else "") + "</section>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>{_e(title)}</h1><p class="muted">Generated {_e(_when(generated_at))} from this run\'s store (the '
        "console's loop status). Ground truth = known answers (golden set, people's labels); judge-estimated = "
        "the evaluator's opinion.</p>"
        f"{summary}{_timeline(status, marks)}{_before_after(status)}{_judge(status)}</main></body></html>\n"
    )
