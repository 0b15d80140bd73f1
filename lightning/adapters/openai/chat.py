"""OpenAIChatModel: the ChatModel port over the ``openai`` SDK (Azure OpenAI, OpenAI, the local server).

The reference agent calls ``choose_tool`` once per request: one
``chat.completions.create`` with the agent's system prompt, the user's query,
the agent's tool schemas and ``tool_choice="required"`` (the agent must call
exactly one tool), then parses the first tool call. SDK errors become domain
errors: 429/5xx/timeouts/connection failures → ``TransientProviderError`` (retried
here a couple of times with backoff — an agent request should not wait long),
other 4xx (unknown deployment, bad request) → ``ProviderError``. Built by the
Container with ``connect(endpoint)`` through ``make_openai_client``.

``choose_tools`` (the promotion gate's replay) runs the same call for many queries in a pool of
``max_concurrency`` threads (8, what labeling's judge uses), and starts no call after its time limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import openai

from lightning.adapters.openai.client import OpenAIEndpoint, make_openai_client
from lightning.adapters.openai.errors import translate_error
from lightning.adapters.retry import RetryPolicy
from lightning.domain.errors import LightningError, ProviderError
from lightning.ports.chat import ChoiceOutcome, ToolCallChoice

ToolChoice = Literal[
    "required",  # the model must call one of the tools (what the agents want)
    "auto",  # the model may answer in text instead (for servers that refuse "required")
]


class OpenAIChatModel:
    """Chooses a tool for a request through chat completions."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        provider: str = "openai",
        tool_choice: ToolChoice = "required",
        temperature: float | None = 0.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.max_concurrency = max(1, max_concurrency)
        self._monotonic = monotonic
        self.provider = provider
        self.tool_choice: ToolChoice = tool_choice
        self.temperature = temperature
        self.retry = retry or RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=2.0, max_retry_after=5.0)

    @classmethod
    def connect(
        cls,
        endpoint: OpenAIEndpoint,
        *,
        credential: Any = None,
        timeout: float = 30.0,
        tool_choice: ToolChoice = "required",
    ) -> OpenAIChatModel:
        client = make_openai_client(endpoint, credential=credential, max_retries=0, timeout=timeout)
        return cls(client, provider=endpoint.provider, tool_choice=tool_choice)

    def choose_tool(
        self, *, model: str, system_prompt: str, tools: list[dict[str, Any]], query: str
    ) -> ToolCallChoice:
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": query}]
        request: dict[str, Any] = {"model": model, "messages": messages, "tools": tools}
        if tools:
            request["tool_choice"] = self.tool_choice
        if self.temperature is not None:
            request["temperature"] = self.temperature
        what = f"chat completion with {model!r}"
        completion = self.retry.call(lambda: self._create(request, what), what=what)
        return _parse(completion, model)

    def choose_tools(
        self,
        queries: Sequence[str],
        *,
        model: str,
        system_prompt: str,
        tools: list[dict[str, Any]],
        time_limit: float | None = None,
    ) -> list[ChoiceOutcome]:
        """``choose_tool`` per query in a bounded pool; a call's error is its outcome, ``None`` when the
        time limit passed before it started."""
        started = self._monotonic()

        def one(query: str) -> ChoiceOutcome:
            if time_limit is not None and self._monotonic() - started >= time_limit:
                return None
            try:
                return self.choose_tool(model=model, system_prompt=system_prompt, tools=tools, query=query)
            except LightningError as exc:  # this query's outcome; anything else is a bug: let it raise
                return exc

        if len(queries) <= 1 or self.max_concurrency == 1:
            return [one(query) for query in queries]
        with ThreadPoolExecutor(
            max_workers=min(self.max_concurrency, len(queries)), thread_name_prefix="chat"
        ) as pool:
            return list(pool.map(one, queries))

    def _create(self, request: dict[str, Any], what: str) -> Any:
        try:
            return self.client.chat.completions.create(**request)
        except openai.OpenAIError as error:
            raise self._translate(error, what) from error

    def _translate(self, error: openai.OpenAIError, what: str) -> Exception:
        return translate_error(
            error,
            what=what,
            provider=self.provider,
            base_url=self.client.base_url,
            not_found_hint="; check TUNED_MODEL_NAME / the deployment name, or unset USE_TUNED_MODEL",
        )


def _parse(completion: Any, requested_model: str) -> ToolCallChoice:
    """The first tool call of the first choice (or its text when the model called none)."""
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise ProviderError(f"the model {requested_model!r} returned no choices", provider="openai")
    message = choices[0].message
    usage = getattr(completion, "usage", None)
    tokens = {
        "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
    }
    # Azure answers with the base model name (e.g. gpt-4o-mini-2024-07-18); the deployment we
    # called is what identifies the version an agent runs, so keep the requested name.
    calls = getattr(message, "tool_calls", None) or []
    if not calls:
        return ToolCallChoice(model=requested_model, tool=None, content=message.content, **tokens)
    function = calls[0].function
    raw = function.arguments or "{}"
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError:
        raise ProviderError(
            f"the model chose {function.name} with arguments that are not JSON: {raw[:200]!r}",
            provider="openai",
        ) from None
    if not isinstance(arguments, dict):
        raise ProviderError(
            f"the model chose {function.name} with arguments that are not a JSON object: {raw[:200]!r}",
            provider="openai",
        )
    return ToolCallChoice(
        model=requested_model, tool=function.name, arguments=arguments, content=message.content, **tokens
    )
