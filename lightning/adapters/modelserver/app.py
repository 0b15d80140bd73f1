"""The OpenAI-compatible HTTP API of the local model server (a Starlette app).

Routes (all under ``/v1``): ``POST/GET /files``, ``GET/DELETE /files/{id}``,
``GET /files/{id}/content``, ``POST/GET /fine_tuning/jobs``,
``GET /fine_tuning/jobs/{id}``, ``…/events``, ``…/checkpoints``,
``POST …/cancel``, ``GET /models``, ``GET/DELETE /models/{id}``,
``POST /chat/completions``; plus ``GET /healthz``.

Every error has the API's body ``{"error": {"message", "type", "param",
"code"}}`` with the API's status (400 bad input, 404 unknown id/model/route,
405, 413 too large); bad input never gets a 500. Requests are held to the
service's own rules (``rules.py``): unknown parameters, out-of-range numbers,
bad function names and tool messages out of order are refused, not ignored.
``max_completion_tokens`` / ``max_tokens`` cut the answer (``finish_reason:
"length"``). ``create_app`` is called by ``server.py``; the job runner starts
and stops with the app's lifespan.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lightning.adapters.modelserver.catalog import BASE_ALIASES, ModelCatalog, served_by
from lightning.adapters.modelserver.jobs import TERMINAL, JobRunner, create_job_record
from lightning.adapters.modelserver.rules import (
    CHAT_PARAMETERS,
    JOB_PARAMETERS,
    ApiError,
    check_function_name,
    check_messages,
    check_number,
    reject_unknown,
    validated,
)
from lightning.adapters.modelserver.store import Store, new_id
from lightning.adapters.modelserver.text import (
    ToolDef,
    count_message_tokens,
    count_tokens,
    count_tool_call_tokens,
    message_text,
    truncate_to_tokens,
)
from lightning.adapters.modelserver.zeroshot import Prediction

DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024  # the service's per-file limit
DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024
FILE_PURPOSES = {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}
SYSTEM_FINGERPRINT = "fp_lightning_local"


@dataclass
class ServerState:
    store: Store
    catalog: ModelCatalog
    runner: JobRunner
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES

    @classmethod
    def open(cls, data_dir: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> ServerState:
        store = Store(data_dir)
        catalog = ModelCatalog(store)
        return cls(
            store=store, catalog=catalog, runner=JobRunner(store, catalog), max_file_bytes=max_file_bytes
        )


# --- request models ----------------------------------------------------------------------------------


class _Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: Literal["auto"] | int = Field(default="auto")
    batch_size: Literal["auto"] | int = Field(default="auto")
    learning_rate_multiplier: Literal["auto"] | float = Field(default="auto")

    def checked(self) -> dict[str, Any]:
        if isinstance(self.n_epochs, int) and not 1 <= self.n_epochs <= 50:
            raise ApiError(400, "n_epochs must be between 1 and 50", param="hyperparameters.n_epochs")
        if isinstance(self.batch_size, int) and not 1 <= self.batch_size <= 256:
            raise ApiError(400, "batch_size must be between 1 and 256", param="hyperparameters.batch_size")
        if isinstance(self.learning_rate_multiplier, float) and not 0 < self.learning_rate_multiplier <= 10:
            raise ApiError(
                400,
                "learning_rate_multiplier must be greater than 0 and at most 10",
                param="hyperparameters.learning_rate_multiplier",
            )
        return self.model_dump()


class _Supervised(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: _Hyperparameters | None = None


class _Method(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: _Supervised | None = None
    dpo: dict[str, Any] | None = None
    reinforcement: dict[str, Any] | None = None


class _JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: _Hyperparameters | None = None
    method: _Method | None = None
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2_147_483_647)
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = None


class _ChatRequest(BaseModel):
    # Unknown names are refused before this model (rules.reject_unknown); the API's other
    # parameters (seed, user, stop, …) are accepted, checked where the API checks them, and unused.
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool | None = None
    n: int | None = Field(default=None, ge=1, le=8)


def _check_chat_numbers(body: dict[str, Any]) -> int | None:
    """The API's ranges (openai-python ``completion_create_params``); returns the completion token cap."""
    check_number(body, "temperature", low=0, high=2)
    check_number(body, "top_p", low=0, high=1)
    check_number(body, "frequency_penalty", low=-2, high=2)
    check_number(body, "presence_penalty", low=-2, high=2)
    check_number(body, "top_logprobs", low=0, high=20, integer=True)
    max_completion = check_number(body, "max_completion_tokens", low=1, integer=True)
    max_tokens = check_number(body, "max_tokens", low=1, integer=True)
    # max_tokens is the deprecated name of the same cap; when both are given the tighter one binds.
    caps = [int(cap) for cap in (max_completion, max_tokens) if cap is not None]
    return min(caps) if caps else None


async def _json_body(request: Request, state: ServerState) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > state.max_json_bytes:
        raise ApiError(
            413,
            f"Request body is too large; the limit is {state.max_json_bytes} bytes.",
            code="request_too_large",
        )
    raw = await request.body()
    if len(raw) > state.max_json_bytes:
        raise ApiError(
            413,
            f"Request body is too large; the limit is {state.max_json_bytes} bytes.",
            code="request_too_large",
        )
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _limit(request: Request, default: int, maximum: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(
            400, f"Invalid value for 'limit': must be an integer between 1 and {maximum}.", param="limit"
        )
    return int(raw)


def _page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    """A cursor page: items after the one with id ``after`` (newest-first order is the caller's)."""
    start = 0
    if after:
        ids = [item["id"] for item in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    page = items[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "has_more": start + limit < len(items),
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if not key.startswith("_")}


# --- files -------------------------------------------------------------------------------------------


def _state(request: Request) -> ServerState:
    return request.app.state.server  # type: ignore[no-any-return]


async def create_file(request: Request) -> Response:
    state = _state(request)
    declared = request.headers.get("content-length")
    overhead = 1024 * 1024
    if declared and declared.isdigit() and int(declared) > state.max_file_bytes + overhead:
        raise _too_large(state, int(declared))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "Uploads must be multipart/form-data with 'file' and 'purpose'.", param="file")
    async with request.form(max_files=1, max_fields=10) as form:
        purpose = form.get("purpose")
        upload = form.get("file")
        if not isinstance(purpose, str) or not purpose:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose")
        if purpose not in FILE_PURPOSES:
            raise ApiError(
                400, f"Invalid value for 'purpose': {purpose!r} is not a file purpose.", param="purpose"
            )
        if purpose != "fine-tune":
            raise ApiError(
                400,
                f"Invalid value for 'purpose': the local model server only accepts 'fine-tune' files, got {purpose!r}.",
                param="purpose",
            )
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        filename = Path(upload.filename or "upload.jsonl").name
        if not filename.lower().endswith(".jsonl"):
            raise ApiError(
                400,
                f"Invalid file format for Fine-Tuning API. Must be .jsonl, got {filename!r}.",
                param="file",
            )
        size = upload.size if upload.size is not None else 0
        if size > state.max_file_bytes:
            raise _too_large(state, size)
        if size == 0:
            raise ApiError(400, "The uploaded file is empty.", param="file")
        tmp = state.store.files_dir / f".upload-{secrets.token_hex(6)}.tmp"
        try:
            await run_in_threadpool(_spool, upload, tmp)
            record = await run_in_threadpool(
                state.store.add_file, filename=filename, purpose=purpose, source=tmp, size=size
            )
        finally:
            tmp.unlink(missing_ok=True)  # moved into the store on success; never left behind
    return JSONResponse(_public(record))


def _spool(upload: UploadFile, target: Path) -> None:
    upload.file.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(upload.file, out, length=1024 * 1024)


def _too_large(state: ServerState, size: int) -> ApiError:
    return ApiError(
        413,
        f"File is too large ({size} bytes); the maximum file size is {state.max_file_bytes} bytes.",
        param="file",
        code="file_too_large",
    )


def _file_or_404(state: ServerState, file_id: str) -> dict[str, Any]:
    record = state.store.get_file(file_id)
    if record is None:
        raise ApiError(404, f"No such File object: {file_id}", param="id")
    return record


async def list_files(request: Request) -> Response:
    state = _state(request)
    files = [_public(record) for record in state.store.list_files(request.query_params.get("purpose"))]
    order = request.query_params.get("order", "desc")
    if order not in {"asc", "desc"}:
        raise ApiError(400, "Invalid value for 'order': must be 'asc' or 'desc'.", param="order")
    if order == "asc":
        files.reverse()
    return JSONResponse(_page(files, request.query_params.get("after"), _limit(request, 10_000, 10_000)))


async def get_file(request: Request) -> Response:
    return JSONResponse(_public(_file_or_404(_state(request), request.path_params["file_id"])))


async def delete_file(request: Request) -> Response:
    state = _state(request)
    file_id = request.path_params["file_id"]
    _file_or_404(state, file_id)
    state.store.delete_file(file_id)
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


async def file_content(request: Request) -> Response:
    state = _state(request)
    file_id = request.path_params["file_id"]
    record = _file_or_404(state, file_id)
    data = await run_in_threadpool(state.store.file_content, file_id)
    media = "text/csv" if record["filename"].endswith(".csv") else "application/octet-stream"
    return Response(data, media_type=media)


# --- fine-tuning jobs -------------------------------------------------------------------------------


async def create_job(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request, state)
    reject_unknown(body, JOB_PARAMETERS)
    params: _JobCreate = validated(_JobCreate, body)
    if not state.catalog.trainable(params.model):
        raise ApiError(
            400,
            f"Model {params.model} is not available for fine-tuning or does not exist. "
            f"The local model server fine-tunes 'local-base' (also under the names {', '.join(BASE_ALIASES)}).",
            param="model",
            code="model_not_available",
        )
    for name, file_id in (
        ("training_file", params.training_file),
        ("validation_file", params.validation_file),
    ):
        if file_id is None:
            continue
        record = state.store.get_file(file_id)
        if record is None:
            raise ApiError(
                400, f"Invalid file ID: {file_id} does not exist.", param=name, code=f"invalid_{name}"
            )
        if record["purpose"] != "fine-tune":
            raise ApiError(
                400,
                f"File {file_id} has purpose {record['purpose']!r}, not 'fine-tune'.",
                param=name,
                code=f"invalid_{name}",
            )
    method_type = params.method.type if params.method else "supervised"
    if method_type != "supervised":
        raise ApiError(
            400,
            f"Fine-tuning method {method_type!r} is not supported by the local model server; use 'supervised'.",
            param="method.type",
        )
    hyper = None
    if params.method and params.method.supervised and params.method.supervised.hyperparameters:
        hyper = params.method.supervised.hyperparameters
    elif params.hyperparameters is not None:
        hyper = params.hyperparameters
    hyperparameters = hyper.checked() if hyper else _Hyperparameters().model_dump()
    if params.metadata is not None:
        _check_metadata(params.metadata)
    if params.integrations:
        raise ApiError(400, "Integrations are not supported by the local model server.", param="integrations")
    record = create_job_record(
        model=params.model,
        training_file=params.training_file,
        validation_file=params.validation_file,
        hyperparameters=hyperparameters,
        method_type=method_type,
        suffix=params.suffix,
        seed=params.seed if params.seed is not None else secrets.randbelow(2**31),
        metadata=params.metadata,
    )
    stored = state.store.add_job(record)
    state.runner.submit(stored["id"])
    return JSONResponse(_public(stored))


def _check_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > 16:
        raise ApiError(400, "Invalid 'metadata': at most 16 keys.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise ApiError(
                400,
                "Invalid 'metadata': keys are at most 64 and values at most 512 characters.",
                param="metadata",
            )


def _job_or_404(state: ServerState, job_id: str) -> dict[str, Any]:
    record = state.store.get_job(job_id)
    if record is None:
        raise ApiError(
            404, f"Fine-tuning job {job_id} not found.", param="fine_tuning_job_id", code="not_found"
        )
    return record


_METADATA_QUERY = re.compile(r"^metadata\[(?P<key>[^\]]+)\]$")


async def list_jobs(request: Request) -> Response:
    state = _state(request)
    wanted = {
        match.group("key"): value
        for name, value in request.query_params.multi_items()
        if (match := _METADATA_QUERY.match(name))
    }
    jobs = [
        _public(record)
        for record in state.store.list_jobs()
        if all((record.get("metadata") or {}).get(key) == value for key, value in wanted.items())
    ]
    return JSONResponse(_page(jobs, request.query_params.get("after"), _limit(request, 20)))


async def get_job(request: Request) -> Response:
    return JSONResponse(_public(_job_or_404(_state(request), request.path_params["job_id"])))


async def list_events(request: Request) -> Response:
    record = _job_or_404(_state(request), request.path_params["job_id"])
    events = list(reversed(record["_events"]))  # newest first, as upstream
    return JSONResponse(_page(events, request.query_params.get("after"), _limit(request, 20, 1000)))


async def list_checkpoints(request: Request) -> Response:
    record = _job_or_404(_state(request), request.path_params["job_id"])
    checkpoints = list(reversed(record["_checkpoints"]))
    return JSONResponse(_page(checkpoints, request.query_params.get("after"), _limit(request, 10)))


async def cancel_job(request: Request) -> Response:
    state = _state(request)
    job_id = request.path_params["job_id"]
    record = _job_or_404(state, job_id)
    cancelled = state.runner.cancel(job_id)
    if cancelled is None:
        raise ApiError(
            400,
            f"Job {job_id} has already finished with status {record['status']!r} and cannot be cancelled.",
            param="fine_tuning_job_id",
            code="job_not_cancellable",
        )
    return JSONResponse(_public(cancelled))


# --- models ------------------------------------------------------------------------------------------


def _model_not_found(model_id: str, param: str | None = None) -> ApiError:
    return ApiError(
        404,
        f"The model `{model_id}` does not exist or you do not have access to it.",
        param=param,
        code="model_not_found",
    )


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": _state(request).catalog.list()})


async def get_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    described = _state(request).catalog.describe(model_id)
    if described is None:
        raise _model_not_found(model_id)
    return JSONResponse(described)


async def delete_model(request: Request) -> Response:
    state = _state(request)
    model_id = request.path_params["model_id"]
    if not state.catalog.exists(model_id):
        raise _model_not_found(model_id)
    if not await run_in_threadpool(state.catalog.forget, model_id):
        raise ApiError(
            400, f"Model {model_id} cannot be deleted (base models and checkpoints cannot).", param="model"
        )
    return JSONResponse({"id": model_id, "object": "model", "deleted": True})


# --- chat completions --------------------------------------------------------------------------------


def _parse_tools(raw: list[dict[str, Any]] | None) -> list[ToolDef]:
    if not raw:
        return []
    if len(raw) > 128:
        raise ApiError(400, "Invalid 'tools': at most 128 tools.", param="tools")
    tools = []
    for index, tool in enumerate(raw):
        try:
            tools.append(ToolDef.from_openai(tool))
        except ValueError as exc:
            raise ApiError(
                400, f"Invalid value for 'tools[{index}]': {exc}.", param=f"tools[{index}]"
            ) from None
        for where, keys, known in (
            (f"tools[{index}]", tool, _TOOL_KEYS),
            (f"tools[{index}].function", tool["function"], _FUNCTION_KEYS),
        ):
            unknown = next((key for key in keys if key not in known), None)
            if unknown is not None:
                raise ApiError(
                    400,
                    f"Unknown parameter: '{where}.{unknown}'.",
                    param=f"{where}.{unknown}",
                    code="unknown_parameter",
                )
        check_function_name(tools[-1].name, f"tools[{index}].function.name")
    return tools


# openai-python: ChatCompletionFunctionToolParam and shared FunctionDefinition
_TOOL_KEYS = frozenset({"type", "function"})
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})


def _tool_choice(choice: str | dict[str, Any] | None, tools: list[ToolDef]) -> tuple[str, str | None]:
    """('auto' | 'none' | 'required' | 'function', forced tool name)."""
    if choice is None:
        return ("auto" if tools else "none"), None
    if not tools:
        raise ApiError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    if isinstance(choice, str):
        if choice not in {"auto", "none", "required"}:
            raise ApiError(
                400,
                f"Invalid value for 'tool_choice': {choice!r}; use auto, none, required or a function.",
                param="tool_choice",
            )
        return choice, None
    function = choice.get("function") if choice.get("type") == "function" else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise ApiError(
            400,
            "Invalid value for 'tool_choice': expected {type: function, function: {name}}.",
            param="tool_choice",
        )
    if name not in {tool.name for tool in tools}:
        raise ApiError(
            400, f"Invalid value for 'tool_choice': no tool named {name!r} in 'tools'.", param="tool_choice"
        )
    return "function", name


def _answer(
    state: ServerState, params: _ChatRequest, tools: list[ToolDef], mode: str, forced: str | None
) -> Prediction:
    messages = params.messages
    last = messages[-1]
    if last.get("role") == "tool":
        return Prediction(tool=None, arguments={}, content=_summarize_tool_result(messages))
    query = next((message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    system_prompt = next(
        (message_text(m.get("content")) for m in messages if m.get("role") in {"system", "developer"}), ""
    )
    usable = [] if mode == "none" else tools
    tuned = state.catalog.tuned(params.model)
    if tuned is not None and usable:
        predicted = tuned.predict_batch(
            [query],
            allowed=[tool.name for tool in usable],
            forced=forced,
            request_tools={tool.name: tool for tool in usable},
            system_prompt=system_prompt,  # base's prior is computed under the request's own prompt
        )[0]
        if predicted is not None:
            return predicted
    if mode == "none" and tools:
        return Prediction(tool=None, arguments={}, content=_text_reply(query))
    return state.catalog.base.predict(
        query, usable, system_prompt=system_prompt, forced=forced, required=mode in {"required", "function"}
    )


def _text_reply(query: str) -> str:
    return f"I can answer that by running one of my analytics tools. You asked: {query.strip()[:200]}"


def _summarize_tool_result(messages: list[dict[str, Any]]) -> str:
    result = message_text(messages[-1].get("content"))
    call_id = messages[-1].get("tool_call_id")
    name = "the tool"
    for message in reversed(messages):
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and call.get("id") == call_id:
                name = str((call.get("function") or {}).get("name", name))
    compact = " ".join(result.split())
    if len(compact) > 600:
        compact = compact[:600] + "…"
    return f"Here are the results from {name}: {compact}"


async def chat_completions(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request, state)
    reject_unknown(body, CHAT_PARAMETERS)
    params: _ChatRequest = validated(_ChatRequest, body)
    max_tokens = _check_chat_numbers(body)
    if params.stream:
        raise ApiError(
            400, "Streaming is not supported by the local model server; omit 'stream'.", param="stream"
        )
    if not state.catalog.exists(params.model):
        raise _model_not_found(params.model)
    check_messages(params.messages)
    tools = _parse_tools(params.tools)
    mode, forced = _tool_choice(params.tool_choice, tools)
    prediction = await run_in_threadpool(_answer, state, params, tools, mode, forced)
    prompt_tokens = count_message_tokens(params.messages, params.tools)
    message, finish_reason, completion_tokens = _reply(prediction, max_tokens)
    choices = [
        {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}
        for index in range(params.n or 1)
    ]
    return JSONResponse(
        {
            "id": new_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            # An alias answers with the model that served it, as the service answers an alias
            # ("gpt-4o-mini") with its snapshot ("gpt-4o-mini-2024-07-18").
            "model": served_by(params.model) or params.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens * len(choices),
                "total_tokens": prompt_tokens + completion_tokens * len(choices),
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "service_tier": "default",
        }
    )


def _reply(prediction: Prediction, max_tokens: int | None) -> tuple[dict[str, Any], str, int]:
    """The assistant message, its finish reason and completion tokens, cut at ``max_tokens``.

    A cut answer ends where the budget does, with ``finish_reason: "length"``, as on the service:
    text is truncated; a tool call keeps its name and as much of its arguments as fits (then
    not valid JSON — what a client must be ready for when it sets a small cap).
    """
    if prediction.tool is None:
        content = prediction.content or ""
        tokens = count_tokens(content)
        finish_reason = "stop"
        if max_tokens is not None and tokens > max_tokens:
            content = truncate_to_tokens(content, max_tokens)
            tokens, finish_reason = count_tokens(content), "length"
        return (
            {"role": "assistant", "content": content, "refusal": None, "annotations": []},
            finish_reason,
            tokens,
        )
    arguments = json.dumps(prediction.arguments)
    tokens = count_tool_call_tokens(prediction.tool, arguments)
    finish_reason = "tool_calls"
    if max_tokens is not None and tokens > max_tokens:
        room = max_tokens - count_tool_call_tokens(prediction.tool, "")
        arguments = truncate_to_tokens(arguments, room)
        tokens, finish_reason = max_tokens, "length"
    message = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "annotations": [],
        "tool_calls": [
            {
                "id": new_id("call_"),
                "type": "function",
                "function": {"name": prediction.tool, "arguments": arguments},
            }
        ],
    }
    return message, finish_reason, tokens


async def healthz(request: Request) -> Response:
    state = _state(request)
    jobs = state.store.list_jobs()
    return JSONResponse(
        {
            "status": "ok",
            "models": len(state.catalog.list()),
            "jobs_running": sum(1 for job in jobs if job["status"] not in TERMINAL),
        }
    )


# --- errors and the app ----------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}"
    else:
        message = str(exc.detail)
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return JSONResponse(body, status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    body = {
        "error": {
            "message": f"The server had an error processing your request ({type(exc).__name__}).",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    return JSONResponse(body, status_code=500)


def create_app(state: ServerState) -> Starlette:
    """The ASGI app over ``state``; its lifespan starts and stops the job runner."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.runner.start()
        try:
            yield
        finally:
            await run_in_threadpool(state.runner.stop)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", get_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/fine_tuning/jobs", create_job, methods=["POST"]),
        Route("/v1/fine_tuning/jobs", list_jobs, methods=["GET"]),
        Route("/v1/fine_tuning/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/v1/fine_tuning/jobs/{job_id}/events", list_events, methods=["GET"]),
        Route("/v1/fine_tuning/jobs/{job_id}/checkpoints", list_checkpoints, methods=["GET"]),
        Route("/v1/fine_tuning/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/models/{model_id:path}", delete_model, methods=["DELETE"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error},
    )
    app.state.server = state
    return app
