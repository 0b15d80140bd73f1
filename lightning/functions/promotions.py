"""HTTP endpoints for promotions (blueprint ``bp``): asked for now, run by the queue worker, followed by URL.

================================================  ============================================================
``POST /api/models/{agent_id}/promote``           ``{"model_name", "mark_active", "force", "dry_run"}`` → 202,
                                                  ``Location`` = the status URL; the job goes on ``fine-tune-done``
``GET  /api/models/{agent_id}/promotions/{ver}``  the job (queued → running: phase, gate progress → succeeded
                                                  or failed), the version's status and the gate's decision
================================================  ============================================================

A promotion replays up to ``GATE_MAX_REQUESTS`` requests per model and waits for a rollout: minutes, where
Azure cuts an HTTP request off at 230 s. So the request is checked and recorded here (``request_promotion``:
bad input is a 4xx now), and the ``fine-tune-done`` trigger runs it (``run_promotion_job``) inside the
function timeout that ``check_time_limits`` verified at start-up.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from lightning.functions._http import PRINCIPAL_HEADER, json_endpoint, json_response, parse_body
from lightning.functions._runtime import container

bp = func.Blueprint()  # type: ignore[no-untyped-call]


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(min_length=1)
    mark_active: bool = Field(default=False, description="Roll out and make it active (like --mark-active).")
    force: bool = False
    dry_run: bool = False


def _caller(req: func.HttpRequest) -> str:
    """Who is asking: the App Service authentication principal when there is one."""
    return req.headers.get(PRINCIPAL_HEADER) or container().settings.lightning_user or "http"


def status_path(agent_id: str, version_id: str) -> str:
    return f"/api/models/{agent_id}/promotions/{version_id.rpartition(':')[2] or version_id}"


@bp.route(route="models/{agent_id}/promote", methods=["POST"])
@json_endpoint
def promote_model(req: func.HttpRequest) -> Any:
    from lightning.services.promotion import PromotionRequest, request_promotion

    body = parse_body(req, PromoteBody)
    c = container()
    ticket = request_promotion(
        PromotionRequest(
            agent_id=req.route_params["agent_id"],
            model_name=body.model_name,
            mark_active=body.mark_active,
            force=body.force,
            dry_run=body.dry_run,
            promoted_by=_caller(req),
        ),
        c.promotion_ports(),
        queue=c.queue,
    )
    url = status_path(ticket.agent_id, ticket.version_id)
    return json_response(
        {**ticket.model_dump(mode="json"), "status_url": url}, status=202, headers={"Location": url}
    )


@bp.route(route="models/{agent_id}/promotions/{version}", methods=["GET"])
@json_endpoint
def promotion_status(req: func.HttpRequest) -> Any:
    from lightning.services.promotion import promotion_status

    return promotion_status(
        req.route_params["agent_id"], req.route_params["version"], models=container().models
    )
