"""TaskAdherenceJudge: ``task_adherence`` scored by a judge model through azure-ai-evaluation.

Built by ``Container.evaluator()`` when ``AZURE_OPENAI_ENDPOINT`` and
``AZURE_OPENAI_JUDGE_DEPLOYMENT`` are set. Each episode becomes the conversation
azure-ai-evaluation's ``TaskAdherenceEvaluator`` expects — system prompt + user query,
then the assistant's tool call, the tool's result and the final answer — with the
agent's tool definitions. Authentication is Entra ID (``DefaultAzureCredential``; tests
inject any ``TokenCredential``), never a key.

Verdict → reward: azure-ai-evaluation 1.18 answers pass (1) or fail (0) on "material
failures"; pass maps to 1.0 and fail to 0.0; a graded score in [0, 1] is kept as is and a
1–5 Likert score (older releases) maps linearly onto [0, 1]. The judge's reason is kept,
prefixed with its verdict. ``expected_tool`` / ``tool_correct`` come from the agent's
rubric (the judge does not name a tool), so tool-selection metrics work the same with
either evaluator. A skipped or unreadable verdict raises: the labeling service records
that episode as failed and goes on.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import Episode
from lightning.domain.errors import ConfigurationError, ProviderError, TransientProviderError
from lightning.ports.evaluator import Evaluation

logger = logging.getLogger(__name__)

RESULT_KEY = "task_adherence"
TOKEN_SCOPE = "https://cognitiveservices.azure.com/.default"
MAX_RESULT_CHARS = 8000


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("azure-ai-evaluation")
    except PackageNotFoundError:
        return "missing"


def _quiet_sdk_logger() -> logging.Logger:
    quiet = logging.getLogger(f"{__name__}.sdk")
    quiet.setLevel(logging.CRITICAL)
    return quiet


def verdict_to_reward(score: Any) -> float:
    """The judge's score → a reward in [0, 1] (``ValueError`` when it is not a usable number)."""
    if (
        isinstance(score, bool)
        or not isinstance(score, int | float)
        or math.isnan(score)
        or math.isinf(score)
    ):
        raise ValueError(f"judge returned no usable score ({score!r})")
    value = float(score)
    if 0.0 <= value <= 1.0:
        return value
    if 1.0 < value <= 5.0:  # Likert 1..5 from older azure-ai-evaluation releases
        return (value - 1.0) / 4.0
    raise ValueError(f"judge score {value} is outside 0..1 and 1..5")


def conversation(
    episode: Episode, agent: AgentDefinition
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The (query, response) message lists TaskAdherenceEvaluator reads, for one episode."""
    query = [
        {"role": "system", "content": [{"type": "text", "text": agent.system_prompt}]},
        {"role": "user", "content": [{"type": "text", "text": episode.state.query}]},
    ]
    response: list[dict[str, Any]] = []
    if episode.action.tool:
        call_id = f"call_{episode.id}"[:64]
        response.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_call",
                        "tool_call_id": call_id,
                        "name": episode.action.tool,
                        "arguments": dict(episode.action.arguments),
                    }
                ],
            }
        )
        outcome: Any = {"error": episode.error} if episode.error else episode.result
        text = outcome if isinstance(outcome, str) else json.dumps(outcome, ensure_ascii=False, default=str)
        response.append(
            {
                "role": "tool",
                "tool_call_id": call_id,
                "content": [{"type": "tool_result", "tool_result": text[:MAX_RESULT_CHARS]}],
            }
        )
    final = episode.response or (
        f"The {episode.action.tool} tool failed: {episode.error}"
        if episode.error
        else "(the agent returned the tool result above to the user as its answer)"
        if episode.action.tool
        else "(the agent gave no answer and called no tool)"
    )
    response.append({"role": "assistant", "content": [{"type": "text", "text": final}]})
    return query, response


def tool_definitions(agent: AgentDefinition) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in agent.tools]


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status behind an SDK error, looking through azure-ai-evaluation's wrappers."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        for candidate in (seen, getattr(seen, "error", None)):
            status = getattr(candidate, "status_code", None)
            if isinstance(status, int):
                return status
        seen = seen.__cause__ or seen.__context__
    return None


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the service asked us to wait (``Retry-After`` / ``retry-after-ms``), through the wrappers."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        response = getattr(seen, "response", None)
        headers = getattr(response, "headers", None)
        if headers is not None:
            for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
                value = headers.get(name)
                try:
                    if value is not None:
                        return max(float(value) * scale, 0.0)
                except (TypeError, ValueError):
                    continue
        seen = seen.__cause__ or seen.__context__
    return None


class TaskAdherenceJudge:
    """Evaluator port over azure-ai-evaluation's TaskAdherenceEvaluator and an Azure OpenAI judge deployment."""

    name = "task_adherence"

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        api_version: str,
        credential: Any | None = None,
        max_concurrency: int = 8,
    ) -> None:
        self.max_concurrency = max_concurrency  # one HTTP call per episode: evaluate_many's pool size
        self._endpoint = endpoint
        self._deployment = deployment
        self._api_version = api_version
        self._credential = credential
        self._evaluator: Any | None = None
        self._lock = threading.Lock()  # built once even when the labeling pool calls in parallel
        self._rubric = RubricEvaluator()
        self.version = f"judge:{deployment}:azure-ai-evaluation-{_sdk_version()}"

    def _sdk_evaluator(self) -> Any:
        with self._lock:
            return self._build_sdk_evaluator()

    def _build_sdk_evaluator(self) -> Any:
        if self._evaluator is None:
            from azure.ai.evaluation import AzureOpenAIModelConfiguration, TaskAdherenceEvaluator

            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = self._credential = DefaultAzureCredential()
            self._check_credential(credential)
            config = AzureOpenAIModelConfiguration(
                azure_endpoint=self._endpoint,
                azure_deployment=self._deployment,
                api_version=self._api_version,
            )
            # It also warns "experimental class" through logging on every construction: known, not news.
            logging.getLogger("azure.ai.evaluation._common._experimental").setLevel(logging.ERROR)
            evaluator = TaskAdherenceEvaluator(config, credential=credential)  # type: ignore[no-untyped-call]
            # The SDK's prompty runner logs each retry and failure with a traceback to a private
            # stdout handler, which would corrupt `--json` output and the CLI's one-line errors.
            # We report failures ourselves (per episode, in the labeling report), so silence it.
            flow = getattr(getattr(evaluator, "_model_runner", None), "flow", None)
            if isinstance(getattr(flow, "_logger", None), logging.Logger):
                flow._logger = _quiet_sdk_logger()  # type: ignore[union-attr]
            self._evaluator = evaluator
        return self._evaluator

    def _check_credential(self, credential: Any) -> None:
        """Fail the whole run once, in one line, when no Entra ID token can be had (not per episode)."""
        identity_logger = logging.getLogger("azure.identity")
        level = identity_logger.level
        identity_logger.setLevel(logging.CRITICAL)  # it logs the full multi-line chain as a warning
        try:
            credential.get_token(TOKEN_SCOPE)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(
                f"no Entra ID token for the judge at {self._endpoint}: {first} "
                "(sign in with `az login`, or give this host a managed identity with the "
                "Cognitive Services OpenAI User role; unset AZURE_OPENAI_JUDGE_DEPLOYMENT to use the rubric)"
            ) from exc
        finally:
            identity_logger.setLevel(level)

    def _call(self, episode: Episode, agent: AgentDefinition) -> dict[str, Any]:
        query, response = conversation(episode, agent)
        evaluator = self._sdk_evaluator()  # outside the try: a credential problem is not per episode
        try:
            result = evaluator(query=query, response=response, tool_definitions=tool_definitions(agent))
        except Exception as exc:
            # azure-ai-evaluation wraps openai errors; classify by the status code when there is one.
            status = _status_code(exc)
            if isinstance(exc, ValueError) and status is None:  # e.g. JSONDecodeError: not a verdict
                raise ProviderError(
                    f"judge {self._deployment} answered something that is not a verdict: {exc}",
                    provider="azure-openai",
                ) from exc
            message = " ".join(str(exc).split())[:300]
            timed_out = isinstance(exc, TimeoutError | ConnectionError) or "Timeout" in type(exc).__name__
            if status in {408, 429} or (isinstance(status, int) and status >= 500) or timed_out:
                raise TransientProviderError(
                    f"judge {self._deployment} unavailable: {message}",
                    provider="azure-openai",
                    status_code=status,
                    retry_after=_retry_after(exc),
                ) from exc
            raise ProviderError(
                f"judge {self._deployment} refused: {message}", provider="azure-openai", status_code=status
            ) from exc
        if not isinstance(result, dict):
            raise ProviderError(
                f"judge returned {type(result).__name__}, not a result", provider="azure-openai"
            )
        return result

    def evaluate_many(self, items: Sequence[tuple[Episode, AgentDefinition]]) -> list[Evaluation | Exception]:
        """A bounded pool of ``max_concurrency`` judge calls; outcomes in the items' order."""
        if items:
            self._sdk_evaluator()  # a credential problem fails the whole call once, as ConfigurationError

        def one(item: tuple[Episode, AgentDefinition]) -> Evaluation | Exception:
            try:
                return self.evaluate(*item)
            except ConfigurationError:
                raise
            except Exception as exc:  # this episode's outcome
                return exc

        if len(items) <= 1 or self.max_concurrency <= 1:
            return [one(item) for item in items]
        with ThreadPoolExecutor(
            max_workers=min(self.max_concurrency, len(items)), thread_name_prefix="judge"
        ) as pool:
            return list(pool.map(one, items))

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation:
        result = self._call(episode, agent)
        status = result.get(f"{RESULT_KEY}_status", "completed")
        reason = str(result.get(f"{RESULT_KEY}_reason") or "").strip()
        if status != "completed":
            raise ProviderError(
                f"judge did not score this episode ({status}): {reason or 'no reason given'}",
                provider="azure-openai",
            )
        try:
            reward = verdict_to_reward(result.get(f"{RESULT_KEY}_score", result.get(RESULT_KEY)))
        except ValueError as exc:
            raise ProviderError(str(exc), provider="azure-openai") from None
        verdict = result.get(f"{RESULT_KEY}_result") or ("pass" if reward >= 1.0 else "fail")
        rubric = self._rubric.evaluate(episode, agent)
        return Evaluation(
            score=round(reward, 4),
            reason=f"judge {verdict}: {reason}" if reason else f"judge {verdict}",
            evaluator=self.name,
            evaluator_version=self.version,
            expected_tool=rubric.expected_tool,
            tool_correct=rubric.tool_correct,
            complete=None,
        )
