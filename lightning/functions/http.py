"""HTTP endpoints of the Functions app (blueprint ``bp``; auth level FUNCTION, set once on the app).

Every route but one is the shared API (``lightning/api/routes.py``, where the table of routes and bodies
lives), served here by thin adapters: ``serve`` turns the ``func.HttpRequest`` into the API's request —
the caller is App Service authentication's signed-in principal — and its answer back. The review
console (``lightning-loop serve-console``) serves the same routes, so one page and one client work
against both hosts (``docs/console.md``).

``POST /api/models/{agent_id}/promote`` is the Function App's own (a rollout action, not part of the
console): ``lightning/functions/promotions.py`` answers 202 and runs the promotion as a job.
"""

from __future__ import annotations

import azure.functions as func

from lightning.functions._http import serve

bp = func.Blueprint()  # type: ignore[no-untyped-call]


# --- the shared API (lightning/api/routes.py) -------------------------------------------------------
@bp.route(route="episodes", methods=["GET"])
def list_episodes(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "list_episodes")


@bp.route(route="episodes/{episode_id}", methods=["GET"])
def get_episode(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "get_episode")


@bp.route(route="episodes/{episode_id}/label", methods=["POST"])
def label_episode(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "label_episode")


@bp.route(route="episodes/{episode_id}/golden", methods=["POST"])
def add_episode_to_golden(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "add_episode_to_golden")


@bp.route(route="label-batch", methods=["POST"])
def label_batch(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "label_batch")


@bp.route(route="datasets/{name}", methods=["GET"])
def dataset_info(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "dataset_info")


@bp.route(route="training/{job_id}", methods=["GET"])
def training_status(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "training_status")


@bp.route(route="review-queue", methods=["GET"])
def review_queue(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "review_queue")


@bp.route(route="judge-report", methods=["GET"])
def judge_report(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "judge_report")


@bp.route(route="golden", methods=["GET"])
def list_golden(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "list_golden")


@bp.route(route="golden", methods=["POST"])
def import_golden(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "import_golden")


@bp.route(route="status", methods=["GET"])
def loop_status(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "loop_status")


@bp.route(route="agents", methods=["GET"])
def list_agents(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "list_agents")


@bp.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "whoami")
