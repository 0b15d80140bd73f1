"""Malformed bodies of every shape get a 4xx with the API's error body — never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

USER = [{"role": "user", "content": "hi"}]

CHAT_BODIES: list[Any] = [
    {"model": 123, "messages": USER},
    {"model": "local-base", "messages": "hello"},
    {"model": "local-base", "messages": [1, 2]},
    {"model": "local-base", "messages": [{"content": "no role"}]},
    {"model": "local-base", "messages": USER, "tools": "all of them"},
    {"model": "local-base", "messages": USER, "tools": [1]},
    {
        "model": "local-base",
        "messages": USER,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}],
    },
    {"model": "local-base", "messages": USER, "tool_choice": 5},
    {"model": "local-base", "messages": USER, "n": 0},
    {"model": "local-base", "messages": USER, "n": "two"},
    {"model": None, "messages": USER},
    {"model": "local-base", "messages": [*USER, {"role": "assistant", "tool_calls": 5}]},
    {"model": "local-base", "messages": [*USER, {"role": "assistant", "tool_calls": [{"function": "f"}]}]},
    {
        "model": "local-base",
        "messages": [
            *USER,
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
        ],
    },
    [],
    "just a string",
    None,
]

JOB_BODIES: list[Any] = [
    {"model": "local-base", "training_file": None},
    {"model": "local-base", "training_file": 42},
    {"model": "local-base", "training_file": "file-x", "hyperparameters": []},
    {
        "model": "local-base",
        "training_file": "file-x",
        "method": {"type": "supervised", "supervised": "fast"},
    },
    {"model": "local-base", "training_file": "file-x", "method": {"type": "magic"}},
    {"model": "local-base", "training_file": "file-x", "seed": -1},
    {"model": "local-base", "training_file": "file-x", "suffix": 5},
    {"model": "local-base", "training_file": "file-x", "metadata": ["a"]},
    {"model": "local-base", "training_file": "file-x", "metadata": {"k": 1}},
    {"model": "local-base", "training_file": "file-x", "hyperparameters": {"batch_size": 0}},
    {"model": "local-base", "training_file": "file-x", "hyperparameters": {"learning_rate_multiplier": -1}},
    {"model": "local-base", "training_file": "file-x", "integrations": [{"type": "wandb"}]},
    {"training_file": "file-x"},
    {},
]


def _assert_api_error(response: httpx.Response, statuses: set[int]) -> None:
    assert response.status_code in statuses, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]


@pytest.mark.parametrize("body", CHAT_BODIES)
def test_bad_chat_bodies(model_server: Any, body: Any) -> None:
    _assert_api_error(httpx.post(f"{model_server.base_url}/chat/completions", json=body), {400, 404})


@pytest.mark.parametrize("body", JOB_BODIES)
def test_bad_job_bodies(model_server: Any, body: Any) -> None:
    _assert_api_error(httpx.post(f"{model_server.base_url}/fine_tuning/jobs", json=body), {400})


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        (
            "POST",
            "/files",
            {
                "content": b"--x\r\nbroken multipart",
                "headers": {"content-type": "multipart/form-data; boundary=x"},
            },
        ),
        ("POST", "/files", {"content": b"", "headers": {"content-type": "multipart/form-data"}}),
        ("GET", "/files", {"params": {"order": "sideways"}}),
        ("GET", "/files", {"params": {"limit": "lots"}}),
        ("GET", "/fine_tuning/jobs", {"params": {"limit": "101"}}),
        ("GET", "/fine_tuning/jobs/ftjob-x/events", {"params": {"limit": "-5"}}),
        (
            "POST",
            "/chat/completions",
            {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}},
        ),
        ("DELETE", "/models/local-base", {}),
        ("DELETE", "/models/ft:local-base:nope:12345678", {}),
        ("PUT", "/fine_tuning/jobs", {}),
        ("GET", "/fine_tuning/jobs/ftjob-x/nothing", {}),
    ],
)
def test_bad_requests_on_other_routes(
    model_server: Any, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = httpx.request(method, f"{model_server.base_url}{path}", **kwargs)
    _assert_api_error(response, {400, 404, 405})


def _random_value(rng: Any, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "bool", "none", "list", "dict"] if depth < 3 else ["str", "int", "none"]
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(
            ["", "user", "assistant", "tool", "function", "auto", "none", "required", "x" * 5, "é🙂"]
        )
    if kind == "int":
        return rng.choice([-1, 0, 1, 2, 10**12])
    if kind == "float":
        return rng.choice([0.5, -3.2, 1e308])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["role", "content", "type", "function", "name", "arguments", "tool_calls", "tool_call_id", "text"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_random_chat_bodies_never_get_a_500(model_server: Any) -> None:
    import random

    rng = random.Random(1234)
    fields = ["messages", "tools", "tool_choice", "n", "stream", "temperature"]
    with httpx.Client(base_url=model_server.base_url) as client:
        for _ in range(300):
            body: dict[str, Any] = {"model": rng.choice(["local-base", "nope", 5])}
            for field in rng.sample(fields, rng.randint(1, len(fields))):
                body[field] = _random_value(rng)
            if rng.random() < 0.5:  # mostly-valid messages with a random part, to reach deeper code
                body["messages"] = [{"role": "user", "content": "sales for Q4 2025"}, _random_value(rng)]
            response = client.post("/chat/completions", json=body)
            assert response.status_code < 500, (body, response.text)
            if response.status_code >= 400:
                assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_random_job_bodies_never_get_a_500(model_server: Any) -> None:
    import random

    rng = random.Random(4321)
    fields = [
        "model",
        "training_file",
        "validation_file",
        "hyperparameters",
        "method",
        "suffix",
        "seed",
        "metadata",
    ]
    with httpx.Client(base_url=model_server.base_url) as client:
        for _ in range(200):
            body = {field: _random_value(rng) for field in rng.sample(fields, rng.randint(1, len(fields)))}
            response = client.post("/fine_tuning/jobs", json=body)
            assert response.status_code == 400, (body, response.text)
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
