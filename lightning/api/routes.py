"""The HTTP API's routes: one table, served by the Function App (``lightning/functions/http.py``) and the
review console (``lightning/console/app.py``) under ``/api/``.

==========================================  ===============================================================
``GET  /api/episodes``                      ``?agent_id&limit&unlabeled_only&labeled_only`` → newest first
``GET  /api/episodes/{episode_id}``         one episode (``ETag`` header = its etag)
``POST /api/episodes/{episode_id}/label``   ``{"reward", "reason", "expected_tool", "expected_arguments"}``
                                            (``If-Match``: 409 with the ``current`` episode if stale)
``POST /api/episodes/{episode_id}/golden``  ``{"expected_tool", "expected_arguments"}`` (or none: the call
                                            a person's label names) → joins the agent's golden set
``POST /api/label-batch``                   ``{"agent_id", "evaluator", "min_score", "limit", "relabel"}``
``GET  /api/datasets/{name}``               the manifest summary (``dataset-info`` as JSON)
``GET  /api/training/{job_id}``             the run's status, polled first (``get-training-status``)
``GET  /api/review-queue``                  ``?agent_id&limit&tool`` → the episodes to review next, with why
``GET  /api/judge-report``                  ``?agent_id`` → the judge against people and golden answers
``GET  /api/golden``                        ``?agent_id&limit`` → the agent's golden set
``POST /api/golden``                        ``?agent_id`` + JSONL body → import (bad lines by number)
``GET  /api/status``                        ``?agent_id`` → the loop's state: judge trust, datasets, runs, models
``GET  /api/agents``                        the agents, their tools' JSON schemas and defaults, the accept line
``GET  /api/whoami``                        the name labels are recorded under
==========================================  ===============================================================

Each handler parses with pydantic, calls one service with the ports of the host's ``Container``, and
returns its result; ``lightning.api.handle`` maps errors (``lightning/api/_http.py``). The Function App
also serves ``POST /api/models/{agent_id}/promote`` (``lightning/functions/promotions.py``, 202 + a job): a rollout action,
not part of the console.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lightning.api._http import (
    ApiRequest,
    ApiResponse,
    error_response,
    json_response,
    parse_json_body,
    parse_model,
)
from lightning.domain.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from lightning.bootstrap import Container

MAX_LIST = 1000

Handler = Callable[[ApiRequest, "Container"], Any]


@dataclass(frozen=True)
class Route:
    """One endpoint: its name (the Function's name), method, path under ``/api/`` and handler."""

    name: str
    method: str
    path: str
    handler: Handler


def caller(request: ApiRequest, c: Container, default: str = "http") -> str:
    """Who is calling: the name the host authenticated, else LIGHTNING_USER, else ``default``."""
    return request.caller or c.settings.lightning_user or default


def _etag(etag: str | None) -> dict[str, str]:
    return {"ETag": f'"{etag}"'} if etag else {}


# --- request models -------------------------------------------------------------------------------
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


class GoldenCallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_tool: str | None = Field(default=None, description="The right tool (default: the labeled one).")
    expected_arguments: dict[str, Any] | None = Field(default=None, description="Its arguments.")


class LabelBatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128)
    evaluator: str = "task_adherence"
    min_score: float | None = Field(default=None, ge=0, le=1)
    limit: int | None = Field(default=None, ge=1)
    relabel: bool = False


class ReviewParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128)
    limit: int = Field(default=20, ge=1, le=500)
    tool: str | None = None


class AgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128)
    limit: int | None = Field(default=None, ge=1, le=10_000)


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- episodes -------------------------------------------------------------------------------------
def list_episodes(request: ApiRequest, c: Container) -> Any:
    from lightning.services.episodes import episode_query, list_episodes

    params = parse_model(EpisodeListParams, request.query)
    query = episode_query(
        agent_id=params.agent_id,
        unlabeled_only=params.unlabeled_only,
        labeled_only=params.labeled_only,
        limit=params.limit,
    )
    found = list_episodes(c.episodes, query)
    return {"count": len(found), "episodes": [episode.to_document() for episode in found]}


def get_episode(request: ApiRequest, c: Container) -> Any:
    episode = c.episodes.get(request.path_params["episode_id"])
    return json_response(episode.to_document(), headers=_etag(episode.etag))


def label_episode(request: ApiRequest, c: Container) -> Any:
    from lightning.services.labeling import HumanLabel, label_episode

    body = parse_json_body(request.body, LabelBody)
    # Optimistic concurrency for clients that read first: the etag goes to the store's conditional
    # write, so a label over a newer version is a 409 (never an overwrite); "*" or none: append.
    expected = (request.header("if-match") or "").strip()
    episode_id = request.path_params["episode_id"]
    try:
        outcome = label_episode(
            HumanLabel(
                episode_id=episode_id,
                reward=body.reward,
                reason=body.reason,
                labeled_by=caller(request, c),
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
    document = {**episode.to_document(), "kind": outcome.kind}
    document["golden_id"] = outcome.golden.id if outcome.golden is not None else None
    return json_response(document, headers=_etag(episode.etag))


def add_episode_to_golden(request: ApiRequest, c: Container) -> Any:
    from lightning.services.golden import golden_from_episode

    body = parse_json_body(request.body, GoldenCallBody)
    example = golden_from_episode(
        request.path_params["episode_id"],
        expected_tool=body.expected_tool,
        expected_arguments=body.expected_arguments,
        episodes=c.episodes,
        agents=c.agents,
        golden=c.golden,
        created_by=caller(request, c),
        confirm_at=c.settings.dataset_min_reward,
    )
    return {**example.model_dump(mode="json"), "total": c.golden.count(example.agent_id)}


def label_batch(request: ApiRequest, c: Container) -> Any:
    from lightning.services.labeling import LabelBatchRequest, LabelingPolicy, label_batch

    body = parse_json_body(request.body, LabelBatchBody)
    batch = LabelBatchRequest(agent_id=body.agent_id, limit=body.limit, relabel=body.relabel)
    ports = c.labeling_ports(body.evaluator)
    return label_batch(batch, ports, LabelingPolicy(min_score=body.min_score)).summary()


# --- datasets, training -----------------------------------------------------------------------------
def dataset_info(request: ApiRequest, c: Container) -> Any:
    from lightning.services.datasets import dataset_info, summary

    return summary(dataset_info(request.path_params["name"], datasets=c.datasets))


def training_status(request: ApiRequest, c: Container) -> Any:
    from lightning.services.training import training_status

    return training_status(request.path_params["job_id"], runs=c.runs, provider=c.fine_tuning)


# --- ground truth -----------------------------------------------------------------------------------
def review_queue(request: ApiRequest, c: Container) -> Any:
    from lightning.services.review import ReviewPolicy, ReviewRequest, review_queue

    params = parse_model(ReviewParams, request.query)
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


def judge_report(request: ApiRequest, c: Container) -> Any:
    from lightning.bootstrap import calibration_policy
    from lightning.services.calibration import judge_report

    params = parse_model(AgentParams, request.query)
    c.agents.get(params.agent_id)
    return judge_report(
        params.agent_id, episodes=c.episodes, golden=c.golden, policy=calibration_policy(c.settings)
    )


def list_golden(request: ApiRequest, c: Container) -> Any:
    from lightning.services.golden import list_golden

    params = parse_model(AgentParams, request.query)
    examples = list_golden(params.agent_id, agents=c.agents, golden=c.golden, limit=params.limit)
    return {
        "agent_id": params.agent_id,
        "count": len(examples),
        "examples": [e.model_dump(mode="json") for e in examples],
    }


def import_golden(request: ApiRequest, c: Container) -> Any:
    from lightning.services.golden import import_golden

    params = parse_model(AgentParams, request.query)
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the golden file is not UTF-8 text ({exc.reason})") from None
    report = import_golden(
        text.splitlines(),
        agent_id=params.agent_id,
        agents=c.agents,
        golden=c.golden,
        created_by=caller(request, c),
    )
    if report.bad and not report.stored:
        first = "; ".join(f"line {bad.line}: {bad.error}" for bad in report.bad[:3])
        raise InvalidInput(f"no golden example imported: {first}")
    return report


def loop_status(request: ApiRequest, c: Container) -> Any:
    from lightning.bootstrap import loop_policy
    from lightning.services.status import loop_status

    params = parse_model(AgentParams, request.query)
    return loop_status(params.agent_id, c.status_ports(), loop_policy(c.settings))


# --- what the page needs to draw itself ---------------------------------------------------------------
def list_agents(request: ApiRequest, c: Container) -> Any:
    parse_model(NoParams, request.query)
    agents = []
    for agent in c.agents.list():
        tools = []
        for tool in agent.tools:
            rule = agent.rubric.rule_for(tool.name)
            defaults = {
                name: check.default
                for name, check in (rule.arguments.items() if rule is not None else ())
                if check.default is not None
            }
            tools.append(
                {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "defaults": defaults,
                }
            )
        agents.append({"id": agent.id, "description": agent.description, "tools": tools})
    return {"min_reward": c.settings.dataset_min_reward, "agents": agents}


def whoami(request: ApiRequest, c: Container) -> Any:
    parse_model(NoParams, request.query)
    return {"caller": caller(request, c)}


ROUTES: tuple[Route, ...] = (
    Route("list_episodes", "GET", "episodes", list_episodes),
    Route("get_episode", "GET", "episodes/{episode_id}", get_episode),
    Route("label_episode", "POST", "episodes/{episode_id}/label", label_episode),
    Route("add_episode_to_golden", "POST", "episodes/{episode_id}/golden", add_episode_to_golden),
    Route("label_batch", "POST", "label-batch", label_batch),
    Route("dataset_info", "GET", "datasets/{name}", dataset_info),
    Route("training_status", "GET", "training/{job_id}", training_status),
    Route("review_queue", "GET", "review-queue", review_queue),
    Route("judge_report", "GET", "judge-report", judge_report),
    Route("list_golden", "GET", "golden", list_golden),
    Route("import_golden", "POST", "golden", import_golden),
    Route("loop_status", "GET", "status", loop_status),
    Route("list_agents", "GET", "agents", list_agents),
    Route("whoami", "GET", "whoami", whoami),
)
"""Every route of the shared API; both hosts serve exactly these."""

__all__ = ["ROUTES", "ApiResponse", "Route", "caller"]
