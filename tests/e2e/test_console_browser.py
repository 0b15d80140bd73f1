"""The review console in a real browser: Playwright for Python driving Debian's chromium.

Each test serves the console (``create_app`` on a Container over this test's SQLite home, uvicorn on a
free loopback port) and drives the page as a reviewer does. A screenshot of each main view is saved
under the test run's temporary directory (``<basetemp>/console-screenshots``) so a failure can be looked
at. Without chromium (``apt-get install -y chromium``, which ``make test`` runs as root) these tests are
skipped with one line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from lightning.console.app import RunningConsole, create_app, start
from lightning.console.auth import parse_tokens
from lightning.domain.episode import Action, Episode, State
from lightning.domain.model import (
    EvaluationSummary,
    GroundTruthFigures,
    ModelVersion,
    PromotionDecision,
    Rate,
)
from lightning.services.labeling import (
    HumanLabel,
    LabelBatchRequest,
    LabelingPolicy,
    label_batch,
    label_episode,
)
from tests.integration.api.data import AGENT, DEFAULTS, TOOLS, traffic

CHROMIUM = "/usr/bin/chromium"
TOKEN = "ana:browser-secret-123"
XSS_QUERY = 'Sales for <img src=x onerror="window.__xss=1;alert(1)"> and <script>window.__xss=2;alert(2)</script> please'

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if sync_playwright is None or shutil.which(CHROMIUM) is None:
        pytest.skip(
            "browser tests skipped: no chromium at /usr/bin/chromium (as root: apt-get install -y chromium; "
            "make test does it) or no playwright (pip install 'lightning-loop[dev]')"
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.getbasetemp() / "console-screenshots"
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Container:
    monkeypatch.setenv("LIGHTNING_EVALUATOR", "rubric")
    c = Container(get_settings())
    c.episodes.add(traffic(30))
    label_batch(LabelBatchRequest(agent_id=AGENT), c.labeling_ports("rubric"), LabelingPolicy(min_score=0.7))
    return c


def serve(c: Container, *, token: str | None = None) -> RunningConsole:
    return start(create_app(c, tokens=parse_tokens(token), reviewer="reviewer-one", loopback_only=True))


@pytest.fixture
def console(store: Container) -> Iterator[RunningConsole]:
    served = serve(store)
    try:
        yield served
    finally:
        served.stop()


class Watched:
    """A page, with every dialog and page error it raised (an XSS would show up here)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    watched = Watched(context.new_page())
    try:
        yield watched
    finally:
        context.close()
    assert watched.errors == []


def open_review(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("[data-testid=episode-view]:not([hidden])")


def selected_id(page: Page) -> str:
    return page.locator("[data-testid=queue-row].selected").get_attribute("data-episode-id") or ""


def shown_id(page: Page) -> str:
    return page.locator("[data-testid=episode-id]").inner_text()


def api_queue(c: Container, limit: int = 50) -> list[str]:
    from lightning.services.review import ReviewPolicy, ReviewRequest, review_queue

    items = review_queue(
        ReviewRequest(agent_id=AGENT, limit=limit),
        episodes=c.episodes,
        agents=c.agents,
        policy=ReviewPolicy(),
    )
    return [item.id for item in items]


# --- the queue ------------------------------------------------------------------------------------------
def test_the_queue_renders_most_informative_first(
    page: Watched, console: RunningConsole, store: Container, shots: Path
) -> None:
    open_review(page.page, console.url + "/")
    rows = page.page.locator("[data-testid=queue-row]")
    assert [rows.nth(i).get_attribute("data-episode-id") for i in range(rows.count())] == api_queue(store)
    first = store.episodes.get(api_queue(store)[0])
    assert selected_id(page.page) == first.id
    assert page.page.locator("[data-testid=episode-request]").inner_text() == first.state.query
    assert page.page.locator("[data-testid=episode-tool]").inner_text() == first.action.tool
    assert (
        json.loads(page.page.locator("[data-testid=episode-arguments]").inner_text())
        == first.action.arguments
    )
    assert "judge" in rows.first.inner_text()
    history = page.page.locator("[data-testid=label-history] tbody tr")
    assert history.count() == 1
    page.page.keyboard.press("?")
    assert page.page.locator("[data-testid=help]").is_visible()
    page.page.screenshot(path=str(shots / "help.png"))
    page.page.keyboard.press("Escape")
    page.page.screenshot(path=str(shots / "review-queue.png"), full_page=True)


def test_a_label_saved_with_the_keyboard_is_a_human_correction(
    page: Watched, console: RunningConsole, store: Container
) -> None:
    p = page.page
    open_review(p, console.url + "/")
    start_id = selected_id(p)
    p.keyboard.press("j")
    p.wait_for_function(
        "id => document.querySelector('[data-testid=episode-id]').textContent !== id", arg=start_id
    )
    p.keyboard.press("k")
    p.wait_for_function(
        "id => document.querySelector('[data-testid=episode-id]').textContent === id", arg=start_id
    )
    episode = store.episodes.get(start_id)
    p.keyboard.press("1")
    assert p.locator("[data-testid=reward-input]").input_value() == "0"
    p.keyboard.press("t")
    assert p.evaluate("document.activeElement.dataset.testid") == "expected-tool"
    while p.locator("[data-testid=expected-tool]").input_value() in ("", episode.action.tool):
        p.keyboard.press("ArrowDown")
    chosen = p.locator("[data-testid=expected-tool]").input_value()
    arguments = json.loads(p.locator("[data-testid=expected-arguments]").input_value())
    assert arguments == DEFAULTS[chosen]  # the agent's defaults for that tool, ready to edit
    p.keyboard.press("Control+Enter")
    saved = p.locator(f"[data-testid=last-saved][data-episode-id='{start_id}']")
    saved.wait_for()
    assert saved.get_attribute("data-kind") == "correction"

    stored = store.episodes.get(start_id)
    assert stored.human_label is not None
    assert stored.corrected
    assert (stored.human_label.expected_tool, stored.human_label.expected_arguments) == (chosen, arguments)
    assert (stored.human_label.score, stored.human_label.labeled_by) == (0.0, "reviewer-one")
    assert p.locator(f"[data-testid=queue-row][data-episode-id='{start_id}']").count() == 0

    # the next one: 5 then s confirms the agent's call
    next_id = selected_id(p)
    p.wait_for_function(
        "id => document.querySelector('[data-testid=episode-id]').textContent === id", arg=next_id
    )
    p.keyboard.press("5")
    p.keyboard.press("s")
    p.locator(f"[data-testid=last-saved][data-episode-id='{next_id}'][data-kind=confirmation]").wait_for()
    assert store.episodes.get(next_id).human_label.score == 1.0  # type: ignore[union-attr]


def test_arguments_that_break_the_schema_are_not_sent(
    page: Watched, console: RunningConsole, store: Container
) -> None:
    p = page.page
    open_review(p, console.url + "/")
    episode_id = selected_id(p)
    p.keyboard.press("2")
    p.select_option("[data-testid=expected-tool]", "top_products")
    p.fill("[data-testid=expected-arguments]", '{"n": 0, "metric": "revenue", "colour": "red"}')
    problems = p.locator("[data-testid=argument-problems] li")
    assert problems.all_inner_texts() == [
        "arguments.n must be >= 1, got 0",
        "arguments.colour is not a parameter of this tool",
    ]
    p.click("[data-testid=save-label]")
    assert "Fix the expected arguments" in p.locator("[data-testid=save-status]").inner_text()
    assert not store.episodes.get(episode_id).human_labeled
    p.fill("[data-testid=expected-arguments]", "{not json")
    assert problems.first.inner_text().startswith("not JSON")


# --- security -------------------------------------------------------------------------------------------
def test_markup_in_an_episode_shows_as_text_and_nothing_runs(
    page: Watched, store: Container, shots: Path
) -> None:
    hostile = Episode(
        id="xss-1",
        agent_id=AGENT,
        state=State(query=XSS_QUERY, context={"note": "<script>window.__xss=3</script>"}),
        action=Action(
            tool="sales_report", arguments={"region": "all", "period": "<img src=x onerror=alert(4)>"}
        ),
        result={"html": "<img src=x onerror=alert(5)>"},
        response="<b onmouseover=alert(6)>answer</b>",
        model_version="<script>alert(7)</script>",
    )
    store.episodes.add([hostile])
    label_batch(LabelBatchRequest(agent_id=AGENT), store.labeling_ports("rubric"), LabelingPolicy())
    served = serve(store)
    try:
        p = page.page
        open_review(p, served.url + "/")
        row = p.locator("[data-testid=queue-row][data-episode-id='xss-1']")
        row.click()
        p.wait_for_function(
            "() => document.querySelector('[data-testid=episode-id]').textContent === 'xss-1'"
        )
        assert row.locator(".query").inner_text() == XSS_QUERY
        assert p.locator("[data-testid=episode-request]").inner_text() == XSS_QUERY
        assert "<img src=x onerror=alert(5)>" in p.locator("[data-testid=episode-view]").inner_text()
        assert p.locator("main img, main script, main b").count() == 0
        p.mouse.move(700, 400)
        assert p.evaluate("window.__xss") is None
        assert page.dialogs == []
        p.screenshot(path=str(shots / "episode-with-markup.png"), full_page=True)
    finally:
        served.stop()


def test_without_the_token_the_api_is_401_and_the_page_takes_it_once_from_the_address(
    page: Watched, store: Container, shots: Path
) -> None:
    served = serve(store, token=TOKEN)
    try:
        p = page.page
        p.goto(served.url + "/")
        p.wait_for_selector("#banner:not([hidden])")
        assert "401" in p.locator("#banner").inner_text()
        assert p.locator("[data-testid=queue-row]").count() == 0
        assert p.request.get(served.url + "/api/agents").status == 401
        p.screenshot(path=str(shots / "token-needed.png"))

        open_review(p, served.url + f"/#token={TOKEN}")
        assert "token" not in p.url
        assert p.evaluate("sessionStorage.getItem('lightning-console-token')") == TOKEN
        assert p.locator("[data-testid=whoami]").inner_text() == "labels recorded as ana"
        p.reload()  # the token stays for this tab, not in the address
        p.wait_for_selector("[data-testid=queue-row]")
        assert "token" not in p.url
    finally:
        served.stop()


def test_a_stale_etag_shows_the_newer_label_and_never_overwrites_it(
    page: Watched, console: RunningConsole, store: Container, shots: Path
) -> None:
    p = page.page
    open_review(p, console.url + "/")
    episode_id = selected_id(p)
    p.keyboard.press("4")
    p.fill("[data-testid=reason-input]", "looks right to me")
    # Someone else labels the same episode meanwhile.
    label_episode(
        HumanLabel(episode_id=episode_id, reward=0.25, reason="wrong period", labeled_by="bo"),
        episodes=store.episodes,
        agents=store.agents,
        golden=store.golden,
    )
    p.click("[data-testid=save-label]")
    conflict = p.locator("[data-testid=conflict]")
    conflict.wait_for(state="visible")
    assert p.locator("[data-testid=conflict-by]").inner_text() == "bo"
    assert p.locator("[data-testid=conflict-reward]").inner_text() == "0.25"
    assert "wrong period" in conflict.inner_text()
    assert p.locator("[data-testid=reason-input]").input_value() == "looks right to me"  # ours is kept
    humans = [label for label in store.episodes.get(episode_id).labels if label.source == "human"]
    assert [(h.labeled_by, h.score) for h in humans] == [("bo", 0.25)]
    p.screenshot(path=str(shots / "conflict.png"), full_page=True)

    p.click("#save-mine")  # only an explicit choice writes over it
    p.locator(f"[data-testid=last-saved][data-episode-id='{episode_id}']").wait_for()
    humans = [label for label in store.episodes.get(episode_id).labels if label.source == "human"]
    assert [(h.labeled_by, h.score) for h in humans] == [("bo", 0.25), ("reviewer-one", 0.75)]


# --- judge vs people, golden set, loop status -----------------------------------------------------------
def _review_some(c: Container) -> None:
    for index, episode_id in enumerate(api_queue(c, limit=12)):
        episode = c.episodes.get(episode_id)
        if index % 3 == 0:
            tool = TOOLS[(TOOLS.index(episode.action.tool or TOOLS[0]) + 1) % len(TOOLS)]
            request = HumanLabel(
                episode_id=episode_id,
                reward=0.0,
                labeled_by="bo",
                expected_tool=tool,
                expected_arguments=DEFAULTS[tool],
            )
        else:
            request = HumanLabel(
                episode_id=episode_id, reward=1.0 if index % 3 == 1 else 0.3, labeled_by="bo"
            )
        label_episode(request, episodes=c.episodes, agents=c.agents, golden=c.golden)


def test_the_judge_panel_shows_judge_report_json(
    page: Watched, console: RunningConsole, store: Container, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _review_some(store)
    assert main(["judge-report", "--agent-id", AGENT, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    p = page.page
    p.goto(console.url + "/#judge")
    panel = p.locator("[data-testid=judge-report]")
    panel.locator("[data-figure=precision]").wait_for()
    assert panel.locator("[data-figure=compared]").get_attribute("data-value") == str(report["compared"])
    assert panel.locator("[data-figure=compared] td").first.inner_text().startswith(f"{report['compared']} (")
    for name in ("agreement", "precision", "recall", "cohen_kappa", "rank_correlation"):
        row = panel.locator(f"[data-figure={name}]")
        figure = report[name]
        for key in ("value", "low", "high"):
            shown = row.get_attribute(f"data-{key}")
            assert (float(shown) if shown else None) == figure[key], (name, key)
        text = row.locator("td.figure").inner_text()
        if figure["value"] is None:
            assert text == "–"
            continue
        numbers = [float(n) for n in text.replace("[", " ").replace("]", " ").replace(",", " ").split()[:3]]
        for got, want in zip(numbers, (figure["value"], figure["low"], figure["high"]), strict=True):
            assert abs(got - want) <= 0.0005 + 1e-9, (name, text)
        if "n" in figure:
            assert text.endswith(f"(n={figure['n']})")
    trust = panel.locator("[data-testid=judge-trust]").inner_text()
    assert report["trust"]["reason"] in trust
    assert ("does NOT trust" in trust) == (not report["trust"]["trusted"])
    confusion = panel.locator("[data-testid=tool-confusion] tbody tr")
    assert confusion.count() == len(report["tool_confusion"])
    p.screenshot(path=str(shots / "judge-vs-people.png"), full_page=True)


def test_golden_set_import_and_one_click_add(
    page: Watched, console: RunningConsole, store: Container, shots: Path, tmp_path: Path
) -> None:
    p = page.page
    open_review(p, console.url + "/")
    episode_id = selected_id(p)
    episode = store.episodes.get(episode_id)
    tool = TOOLS[(TOOLS.index(episode.action.tool or TOOLS[0]) + 2) % len(TOOLS)]
    p.select_option("[data-testid=expected-tool]", tool)
    p.click("[data-testid=add-golden]")
    p.wait_for_function(
        "() => document.querySelector('[data-testid=save-status]').textContent.startsWith('Added')"
    )
    [example] = store.golden.list(AGENT)
    assert (example.episode_id, example.expected_tool, example.expected_arguments) == (
        episode_id,
        tool,
        DEFAULTS[tool],
    )

    golden_file = tmp_path / "golden.jsonl"
    golden_file.write_text(
        json.dumps(
            {
                "query": "Forecast sales for the next 6 months",
                "expected_tool": "sales_forecast",
                "expected_arguments": {"horizon_months": 6},
            }
        )
        + "\n"
        + '{"query": "bad line", "expected_tool": "send_email"}\n',
        encoding="utf-8",
    )
    p.goto(console.url + "/#golden")
    p.set_input_files("[data-testid=golden-file]", str(golden_file))
    report = p.locator("[data-testid=golden-import-report]")
    report.locator(".status").wait_for()
    assert "1 stored, 1 bad" in report.inner_text()
    assert "line 2:" in report.inner_text()
    p.wait_for_function(
        "() => document.querySelector('[data-testid=golden-count]').textContent.startsWith('2 ')"
    )
    assert store.golden.count(AGENT) == 2
    p.screenshot(path=str(shots / "golden-set.png"), full_page=True)


def _figures(model: str, tool: float, args: float, n: int = 60) -> EvaluationSummary:
    def rate(value: float) -> Rate:
        return Rate(value=value, n=n, low=max(0.0, value - 0.1), high=min(1.0, value + 0.08))

    return EvaluationSummary(
        model=model,
        examples=n,
        ground_truth=GroundTruthFigures(n=n, tool_accuracy=rate(tool), argument_exact_match=rate(args)),
        golden_set="golden:autonomous-agent (60)",
    )


def test_loop_status_draws_the_before_after_on_ground_truth(
    page: Watched, console: RunningConsole, store: Container, shots: Path
) -> None:
    decision = PromotionDecision(
        promote=True,
        reason="better on ground truth",
        candidate=_figures("ft:local-base:autonomous-agent:new", 0.85, 0.7),
        baseline=_figures("local-base", 0.6, 0.45),
        ground_truth=True,
    )
    version, _ = store.models.register(
        ModelVersion(
            id=f"{AGENT}:v1",
            agent_id=AGENT,
            version=1,
            model_name="ft:local-base:autonomous-agent:new",
            status="active",
            decision=decision,
        )
    )
    store.models.activate(AGENT, version.id)
    p = page.page
    p.goto(console.url + "/#status")
    figure = p.locator("[data-testid=before-after]")
    figure.wait_for()
    assert figure.locator("svg rect.bar.before").count() == 3  # two bars and the legend's swatch
    assert figure.locator("svg rect.bar.after").count() == 3
    assert "85.0" in figure.inner_text()
    assert "n=60" in figure.inner_text()
    assert p.locator("[data-testid=active-version]").inner_text() == f"{AGENT}:v1"
    assert "ground truth first" in p.locator("[data-testid=models-table]").inner_text()
    p.screenshot(path=str(shots / "loop-status.png"), full_page=True)


def test_the_pages_schema_checks_match_the_servers(
    page: Watched, console: RunningConsole, store: Container
) -> None:
    """The JSON editor's checks (schema.js) find the same problems, at the same paths, as the server's."""
    from lightning.domain.tool_schema import schema_problems

    agent = store.agents.get(AGENT)
    generic = {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"type": "string", "maxLength": 3},
                "minItems": 1,
                "maxItems": 2,
            },
            "code": {"type": "string", "pattern": "^[A-Z]{2}$", "minLength": 2},
            "ratio": {"type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "fixed": {"const": "x"},
        },
        "required": ["code"],
        "additionalProperties": {"type": "integer"},
    }
    cases: list[tuple[Any, dict[str, Any]]] = [
        (value, tool.parameters)
        for tool in agent.tools
        for value in (
            {},
            dict(DEFAULTS[tool.name]),
            {**DEFAULTS[tool.name], "extra": 1},
            dict.fromkeys(tool.required, True),
            dict.fromkeys(tool.required, 0),
            dict.fromkeys(tool.required, "west"),
            [],
            "text",
        )
    ] + [
        (value, generic)
        for value in (
            {"code": "AB"},
            {"code": "abc", "tags": [], "ratio": 1, "fixed": "y", "other": 1.5},
            {"code": "A", "tags": ["long-tag", 3, "ok", "x"], "ratio": None, "other": 2},
            {"code": 12},
        )
    ]
    p = page.page
    p.goto(console.url + "/")
    p.wait_for_selector("body[data-ready=true]")
    shown = p.evaluate(
        "async (cases) => { const m = await import('./schema.js');"
        " return cases.map(([value, schema]) => m.schemaProblems(value, schema)); }",
        [list(case) for case in cases],
    )
    for (value, schema), problems in zip(cases, shown, strict=True):
        server = schema_problems(value, schema)
        assert [m.split(" ")[0] for m in problems] == [m.split(" ")[0] for m in server], (
            value,
            problems,
            server,
        )
