"""TaskAdherenceJudge over real azure-ai-evaluation + openai SDK code, against a local HTTP judge.

The stand-in speaks the Azure OpenAI chat-completions API on 127.0.0.1
(``POST /openai/deployments/{deployment}/chat/completions?api-version=…``), records each
request and answers with the JSON verdict the task-adherence prompt asks for. The
credential is a real ``TokenCredential`` object returning a test token, so the Entra ID
path (bearer token, no api-key) is exercised too.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from lightning.adapters.evaluators.judge import TaskAdherenceJudge, verdict_to_reward
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.bootstrap import Container
from lightning.config import get_settings
from lightning.domain.agent import AgentDefinition
from lightning.domain.errors import ProviderError, TransientProviderError
from lightning.ports.bundles import LabelingPorts
from lightning.services.labeling import LabelBatchRequest, label_batch
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode

DEPLOYMENT = "judge-gpt-4o"


class JudgeServer:
    """A chat-completions endpoint whose answers the test scripts."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, Any]] = []
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                del format, args

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                if server.delay:
                    time.sleep(server.delay)
                with server.lock:
                    server.in_flight -= 1
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                        }
                    )
                    status, answer = (
                        server.answers.pop(0)
                        if server.answers
                        else (200, {"score": 1, "reason": "ok", "status": "completed"})
                    )
                if status != 200:
                    payload = {
                        "error": {
                            "message": str(answer),
                            "type": "invalid_request_error",
                            "code": str(status),
                        }
                    }
                else:
                    content = answer if isinstance(answer, str) else json.dumps(answer)
                    payload = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": DEPLOYMENT,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, *answers: Any, status: int = 200) -> None:
        with self.lock:
            self.answers.extend((status, a) for a in answers)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.answers.clear()
            self.max_in_flight = 0


@pytest.fixture(scope="module")
def judge_server() -> Iterator[JudgeServer]:
    server = JudgeServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def server(judge_server: JudgeServer) -> JudgeServer:
    judge_server.reset()
    return judge_server


class StaticTokenCredential:
    """A TokenCredential (azure.core protocol) handing out a fixed token; records the scopes asked."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del kwargs
        self.scopes.append(scopes)
        return AccessToken("test-entra-token", int(time.time()) + 3600)


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential()


@pytest.fixture
def judge(server: JudgeServer, credential: StaticTokenCredential) -> TaskAdherenceJudge:
    return TaskAdherenceJudge(
        endpoint=server.endpoint,
        deployment=DEPLOYMENT,
        api_version="2025-04-01-preview",
        credential=credential,
    )


@pytest.fixture(scope="module")
def agent() -> AgentDefinition:
    return YamlAgentRegistry().get("autonomous-agent")


def test_a_pass_verdict_is_reward_one_with_the_reason_kept(
    judge: TaskAdherenceJudge,
    server: JudgeServer,
    credential: StaticTokenCredential,
    agent: AgentDefinition,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.answer(
        {
            "reason": "Called analyze_churn for Q4 2025 and reported the churn rate.",
            "score": 1,
            "status": "completed",
        }
    )
    verdict = judge.evaluate(make_episode(response="Churn in Q4 2025 was 12%."), agent)
    assert verdict.score == 1.0
    assert verdict.reason == "judge pass: Called analyze_churn for Q4 2025 and reported the churn rate."
    assert (verdict.evaluator, verdict.expected_tool, verdict.tool_correct) == (
        "task_adherence",
        "analyze_churn",
        True,
    )
    assert verdict.evaluator_version.startswith(f"judge:{DEPLOYMENT}:azure-ai-evaluation-")

    request = server.requests[-1]
    assert request["path"].startswith(
        f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version=2025-04-01-preview"
    )
    assert request["headers"]["authorization"] == "Bearer test-entra-token"
    assert "api-key" not in {k.lower() for k in request["headers"]}
    assert credential.scopes
    prompt = json.dumps(request["body"]["messages"])
    assert "Analyze customer churn for Q4 2025" in prompt  # the user's query
    assert "analyze_churn" in prompt  # the tool call
    assert "at_risk_customers" in prompt  # the tool result
    assert "You are an analytics agent" in prompt  # the agent's system prompt
    assert request["body"]["response_format"] == {"type": "json_object"}
    assert capsys.readouterr() == ("", "")  # the SDK's chatter stays out of the CLI's output


def test_a_fail_verdict_is_reward_zero(
    judge: TaskAdherenceJudge, server: JudgeServer, agent: AgentDefinition
) -> None:
    server.answer({"reason": "Used analyze_churn for a forecast request.", "score": 0, "status": "completed"})
    episode = make_episode(query="Predict next month's sales forecast", tool="analyze_churn")
    verdict = judge.evaluate(episode, agent)
    assert verdict.score == 0.0
    assert verdict.reason.startswith("judge fail: Used analyze_churn")
    assert (verdict.expected_tool, verdict.tool_correct) == ("sales_forecast", False)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"reason": "empty response", "score": None, "status": "skipped"}, "did not score"),
        ("this is not json", "not a verdict"),
    ],
)
def test_unusable_verdicts_raise_for_that_episode(
    judge: TaskAdherenceJudge, server: JudgeServer, agent: AgentDefinition, answer: Any, message: str
) -> None:
    server.answer(answer)
    with pytest.raises(Exception, match=message):
        judge.evaluate(make_episode(), agent)


def test_a_refusal_is_a_provider_error(
    judge: TaskAdherenceJudge, server: JudgeServer, agent: AgentDefinition
) -> None:
    server.answer("deployment not found", status=404)
    with pytest.raises(ProviderError, match=f"judge {DEPLOYMENT} refused"):
        judge.evaluate(make_episode(), agent)


def test_label_batch_with_the_judge_skips_only_the_bad_episode(
    judge: TaskAdherenceJudge, server: JudgeServer
) -> None:
    store = InMemoryEpisodeStore([make_episode(f"e{i}") for i in range(3)])
    server.answer(
        {"reason": "fine", "score": 1, "status": "completed"},
        "garbage",
        {"reason": "wrong", "score": 0, "status": "completed"},
    )
    report = label_batch(
        LabelBatchRequest(agent_id="autonomous-agent"),
        LabelingPorts(episodes=store, agents=YamlAgentRegistry(), evaluator=judge),
    )
    assert (report.labeled, report.failed) == (2, 1)
    rewards = sorted(e.reward for e in store.all() if e.reward is not None)
    assert rewards == [0.0, 1.0]


def test_the_container_picks_the_judge_when_configured(
    monkeypatch: pytest.MonkeyPatch, server: JudgeServer
) -> None:
    assert Container(get_settings()).evaluator("task_adherence").version == "rubric-2"
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.endpoint)
    monkeypatch.setenv("AZURE_OPENAI_JUDGE_DEPLOYMENT", DEPLOYMENT)
    container = Container(get_settings())
    assert isinstance(container.evaluator("task_adherence"), TaskAdherenceJudge)
    assert container.evaluator("rubric").version == "rubric-2"


@pytest.mark.parametrize(
    ("score", "reward"), [(1, 1.0), (0, 0.0), (0.5, 0.5), (5, 1.0), (3, 0.5), (1.0, 1.0)]
)
def test_verdict_to_reward(score: float, reward: float) -> None:
    assert verdict_to_reward(score) == reward


@pytest.mark.parametrize("score", [None, "1", True, float("nan"), 7, -1])
def test_verdict_to_reward_refuses_unusable_scores(score: Any) -> None:
    with pytest.raises(ValueError):
        verdict_to_reward(score)


def test_judge_failures_print_nothing_on_stdout(
    judge: TaskAdherenceJudge, server: JudgeServer, agent: AgentDefinition, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SDK's own stdout logger is silenced: `--json` output and one-line errors stay clean."""
    server.answer("nope", status=400)
    with pytest.raises(ProviderError) as err:
        judge.evaluate(make_episode(), agent)
    assert err.value.status_code == 400
    out, errout = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in errout


def test_a_401_is_a_permanent_provider_error(
    judge: TaskAdherenceJudge, server: JudgeServer, agent: AgentDefinition
) -> None:
    server.answer("unauthorized", status=401)
    with pytest.raises(ProviderError) as refused:
        judge.evaluate(make_episode(), agent)
    assert refused.value.status_code == 401
    assert not isinstance(refused.value, TransientProviderError)


def test_status_codes_are_found_through_the_sdk_wrappers() -> None:
    """429/5xx make TransientProviderError; the SDK retries those itself for ~minutes, so the
    classification is checked on the real exception types instead of over HTTP."""
    import httpx
    import openai
    from azure.ai.evaluation._legacy.prompty._exceptions import WrappedOpenAIError

    from lightning.adapters.evaluators.judge import _status_code

    request = httpx.Request("POST", "http://127.0.0.1/openai/deployments/x/chat/completions")
    throttled = openai.RateLimitError("slow down", response=httpx.Response(429, request=request), body=None)
    wrapped = WrappedOpenAIError(error=throttled)
    wrapped.__cause__ = throttled  # as `raise WrappedOpenAIError(error=exc) from exc` in the SDK
    assert _status_code(wrapped) == 429
    assert _status_code(ValueError("no status")) is None


class FailingCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise RuntimeError("no identity here\nsecond line of a long chain")


def test_no_token_stops_the_whole_batch_in_one_line(server: JudgeServer) -> None:
    from lightning.domain.errors import ConfigurationError

    judge = TaskAdherenceJudge(
        endpoint=server.endpoint,
        deployment=DEPLOYMENT,
        api_version="2025-04-01-preview",
        credential=FailingCredential(),
    )
    store = InMemoryEpisodeStore([make_episode(f"e{i}") for i in range(3)])
    with pytest.raises(ConfigurationError, match="no Entra ID token for the judge") as err:
        label_batch(
            LabelBatchRequest(agent_id="autonomous-agent"),
            LabelingPorts(episodes=store, agents=YamlAgentRegistry(), evaluator=judge),
        )
    assert "\n" not in str(err.value)
    assert "az login" in str(err.value)
    assert server.requests == []  # nothing was sent without a token
    assert not any(e.labeled for e in store.all())


def test_the_judge_is_called_in_parallel(judge: TaskAdherenceJudge, server: JudgeServer) -> None:
    store = InMemoryEpisodeStore([make_episode(f"p{i:02d}") for i in range(16)])
    server.delay = 0.02  # so parallel calls overlap
    try:
        report = label_batch(
            LabelBatchRequest(agent_id="autonomous-agent"),
            LabelingPorts(episodes=store, agents=YamlAgentRegistry(), evaluator=judge),
        )
    finally:
        server.delay = 0.0
    assert report.labeled == 16
    assert len(server.requests) == 16
    assert server.max_in_flight > 1
