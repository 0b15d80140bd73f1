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
