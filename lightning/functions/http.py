"""HTTP endpoints of the Functions app (blueprint ``bp``; auth level FUNCTION, set once on the app).

==========================================  ===============================================================
``GET  /api/episodes``                      ``?agent_id&limit&unlabeled_only&labeled_only`` → newest first
``GET  /api/episodes/{episode_id}``         one episode (``ETag`` header = its etag)
``POST /api/episodes/{episode_id}/label``   ``{"reward": 0.9, "reason": "..."}`` (``If-Match``: 409 if stale)
``POST /api/label-batch``                   ``{"agent_id", "evaluator", "min_score", "limit", "relabel"}``
``GET  /api/datasets/{name}``               the manifest summary (``dataset-info`` as JSON)
``GET  /api/training/{job_id}``             the run's status, polled first (``get-training-status``)
``GET  /api/review-queue``                  ``?agent_id&limit&tool`` → the episodes to review next, with why
``GET  /api/judge-report``                  ``?agent_id`` → the judge against people and golden answers
``GET  /api/golden``                        ``?agent_id&limit`` → the agent's golden set
``POST /api/golden``                        ``?agent_id`` + JSONL body → import (bad lines by number)
``GET  /api/status``                        ``?agent_id`` → the loop's state: judge trust, datasets, runs, models
==========================================  ===============================================================

Each handler parses with pydantic, calls one service, and returns its result; ``json_endpoint`` maps
errors: 400 bad input, 404 unknown ids, 409 label/etag conflicts, 502/503 provider failures.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lightning.domain.errors import Conflict, InvalidInput
from lightning.functions._http import error_response, json_endpoint, json_response, parse_body, parse_model
from lightning.functions._runtime import container, loop_policy

bp = func.Blueprint()  # type: ignore[no-untyped-call]

MAX_LIST = 1000


def _caller(req: func.HttpRequest, default: str = "http") -> str:
    """Who is calling: the App Service authentication principal when there is one."""
    return req.headers.get("x-ms-client-principal-name") or container().settings.lightning_user or default


class EpisodeListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str | None = Field(default=None, min_length=1, max_length=128)
    limit: int = Field(default=50, ge=1, le=MAX_LIST)
    unlabeled_only: bool = False
    labeled_only: bool = False

    @field_validator("unlabeled_only", "labeled_only", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        # ``?unlabeled_only`` alone (empty value) means true, like a CLI flag.
        return True if value == "" else value


class LabelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward: Any = Field(description="A number in [0, 1] (validated by the labeling service).")
    reason: str = Field(default="", max_length=2000)
    expected_tool: str | None = Field(default=None, description="The tool the agent should have called.")
    expected_arguments: dict[str, Any] | None = Field(
        default=None, description="Its arguments (validated against the tool's JSON schema)."
    )


class LabelBatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128)
    evaluator: str = "task_adherence"
    min_score: float | None = Field(default=None, ge=0, le=1)
    limit: int | None = Field(default=None, ge=1)
    relabel: bool = False


@bp.route(route="episodes", methods=["GET"])
@json_endpoint
def list_episodes(req: func.HttpRequest) -> Any:
    from lightning.services.episodes import episode_query, list_episodes

    # ``code`` is the function key when passed in the query string: the host's, not ours.
    params = parse_model(EpisodeListParams, {k: v for k, v in req.params.items() if k != "code"})
    query = episode_query(
        agent_id=params.agent_id,
        unlabeled_only=params.unlabeled_only,
        labeled_only=params.labeled_only,
        limit=params.limit,
    )
    found = list_episodes(container().episodes, query)
    return {"count": len(found), "episodes": [episode.to_document() for episode in found]}


@bp.route(route="episodes/{episode_id}", methods=["GET"])
@json_endpoint
def get_episode(req: func.HttpRequest) -> Any:
    episode = container().episodes.get(req.route_params["episode_id"])
    headers = {"ETag": f'"{episode.etag}"'} if episode.etag else None
    return json_response(episode.to_document(), headers=headers)


@bp.route(route="episodes/{episode_id}/label", methods=["POST"])
@json_endpoint
def label_episode(req: func.HttpRequest) -> Any:
    from lightning.services.labeling import HumanLabel, label_episode

    body = parse_body(req, LabelBody)
    # Optimistic concurrency for clients that read first: the etag goes to the store's conditional
    # write, so a label over a newer version is a 409 (never an overwrite); "*" or none: append.
    expected = (req.headers.get("if-match") or "").strip()
    c = container()
    episode_id = req.route_params["episode_id"]
    try:
        outcome = label_episode(
            HumanLabel(
                episode_id=episode_id,
                reward=body.reward,
                reason=body.reason,
                labeled_by=_caller(req),
                expected_tool=body.expected_tool,
                expected_arguments=body.expected_arguments,
                if_match=expected.strip('"') if expected and expected != "*" else None,
            ),
            episodes=c.episodes,
            agents=c.agents,
            golden=c.golden,
            confirm_at=c.settings.dataset_min_reward,
        )
    except Conflict as exc:
        # The reviewer saw an older version: answer with the newer one, so the page can show it.
        current = c.episodes.get(episode_id)
        return error_response(409, "Conflict", exc.message, id=episode_id, current=current.to_document())
    episode = outcome.episode
    headers = {"ETag": f'"{episode.etag}"'} if episode.etag else None
    document = {**episode.to_document(), "kind": outcome.kind}
    document["golden_id"] = outcome.golden.id if outcome.golden is not None else None
    return json_response(document, headers=headers)


@bp.route(route="label-batch", methods=["POST"])
@json_endpoint
def label_batch(req: func.HttpRequest) -> Any:
    from lightning.services.labeling import LabelBatchRequest, LabelingPolicy, label_batch

    body = parse_body(req, LabelBatchBody)
    request = LabelBatchRequest(agent_id=body.agent_id, limit=body.limit, relabel=body.relabel)
    ports = container().labeling_ports(body.evaluator)
    return label_batch(request, ports, LabelingPolicy(min_score=body.min_score)).summary()


@bp.route(route="datasets/{name}", methods=["GET"])
@json_endpoint
def dataset_info(req: func.HttpRequest) -> Any:
    from lightning.services.datasets import dataset_info, summary

    return summary(dataset_info(req.route_params["name"], datasets=container().datasets))


@bp.route(route="training/{job_id}", methods=["GET"])
@json_endpoint
def training_status(req: func.HttpRequest) -> Any:
    from lightning.services.training import training_status

    c = container()
    return training_status(req.route_params["job_id"], runs=c.runs, provider=c.fine_tuning)


class ReviewParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128)
    limit: int = Field(default=20, ge=1, le=500)
    tool: str | None = None


class AgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128)
    limit: int | None = Field(default=None, ge=1, le=10_000)


def _params(req: func.HttpRequest) -> dict[str, str]:
    # ``code`` is the function key when passed in the query string: the host's, not ours.
    return {k: v for k, v in req.params.items() if k != "code"}


@bp.route(route="review-queue", methods=["GET"])
@json_endpoint
def review_queue(req: func.HttpRequest) -> Any:
    from lightning.services.review import ReviewPolicy, ReviewRequest, review_queue

    params = parse_model(ReviewParams, _params(req))
    c = container()
    items = review_queue(
        ReviewRequest(agent_id=params.agent_id, limit=params.limit, tool=params.tool),
        episodes=c.episodes,
        agents=c.agents,
        policy=ReviewPolicy(min_reward=c.settings.dataset_min_reward),
    )
    return {
        "agent_id": params.agent_id,
        "count": len(items),
        "items": [i.model_dump(mode="json") for i in items],
    }


@bp.route(route="judge-report", methods=["GET"])
@json_endpoint
def judge_report(req: func.HttpRequest) -> Any:
    from lightning.bootstrap import calibration_policy
    from lightning.services.calibration import judge_report

    params = parse_model(AgentParams, _params(req))
    c = container()
    c.agents.get(params.agent_id)
    return judge_report(
        params.agent_id, episodes=c.episodes, golden=c.golden, policy=calibration_policy(c.settings)
    )


@bp.route(route="golden", methods=["GET"])
@json_endpoint
def list_golden(req: func.HttpRequest) -> Any:
    from lightning.services.golden import list_golden

    params = parse_model(AgentParams, _params(req))
    c = container()
    examples = list_golden(params.agent_id, agents=c.agents, golden=c.golden, limit=params.limit)
    return {
        "agent_id": params.agent_id,
        "count": len(examples),
        "examples": [e.model_dump(mode="json") for e in examples],
    }


@bp.route(route="golden", methods=["POST"])
@json_endpoint
def import_golden(req: func.HttpRequest) -> Any:
    from lightning.services.golden import import_golden

    params = parse_model(AgentParams, _params(req))
    try:
        text = (req.get_body() or b"").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the golden file is not UTF-8 text ({exc.reason})") from None
    c = container()
    report = import_golden(
        text.splitlines(), agent_id=params.agent_id, agents=c.agents, golden=c.golden, created_by=_caller(req)
    )
    if report.bad and not report.stored:
        first = "; ".join(f"line {bad.line}: {bad.error}" for bad in report.bad[:3])
        raise InvalidInput(f"no golden example imported: {first}")
    return report


@bp.route(route="status", methods=["GET"])
@json_endpoint
def loop_status(req: func.HttpRequest) -> Any:
    from lightning.services.status import loop_status

    params = parse_model(AgentParams, _params(req))
    return loop_status(params.agent_id, container().status_ports(), loop_policy())
