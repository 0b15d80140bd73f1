"""POST /api/models/{agent_id}/promote answers 202 with a status URL; the fine-tune-done trigger runs the
job; the status endpoint follows it from queued to its result (real azure.functions objects, SQLite)."""

from __future__ import annotations

from typing import Any

import pytest

from lightning.bootstrap import Container
from lightning.domain.messages import FINE_TUNE_DONE
from tests.integration.functions.harness import call_http, handler, http_request, servicebus_message

AGENT = "autonomous-agent"


@pytest.fixture
def served(use_model_server: Any, model_server_tuned_model: str, app_container: Container) -> str:
    """A model the local model server really serves (so the deployer finds it), in an app wired to it."""
    return model_server_tuned_model


def _post(body: dict[str, Any]) -> tuple[int, Any, Any]:
    return call_http(
        "promote_model",
        http_request("POST", f"models/{AGENT}/promote", route_params={"agent_id": AGENT}, body=body),
    )


def _status(version: str) -> tuple[int, Any]:
    status, body, _ = call_http(
        "promotion_status",
        http_request(
            "GET",
            f"models/{AGENT}/promotions/{version}",
            route_params={"agent_id": AGENT, "version": version},
        ),
    )
    return status, body


def test_promote_is_accepted_queued_run_by_the_trigger_and_followed_by_url(
    served: str, app_container: Container
) -> None:
    status, body, response = _post({"model_name": served, "mark_active": True, "force": True})
    assert status == 202, body
    assert response.headers["Location"] == body["status_url"] == f"/api/models/{AGENT}/promotions/v1"
    assert (body["job"]["state"], body["created"]) == ("queued", True)
    # Asking again while it is queued gives the same job, not a second one.
    again = _post({"model_name": served, "mark_active": True, "force": True})[1]
    assert (again["job"]["id"], again["created"]) == (body["job"]["id"], False)
    assert _status("v1")[1]["job"]["state"] == "queued"

    [message] = app_container.queue.receive(FINE_TUNE_DONE)  # the repeat was dropped by its message id
    assert message.message_id == f"promote-{body['job']['id']}"
    handler("fine_tune_done")(servicebus_message(message.body, message_id=message.message_id))
    app_container.queue.complete(message)

    code, done = _status("v1")
    assert code == 200
    assert (done["job"]["state"], done["job"]["phase"], done["job"]["action"]) == (
        "succeeded",
        "done",
        "promoted",
    )
    assert (done["status"], done["active"]) == ("active", True)
    assert done["decision"]["forced"] is True
    # A repeated delivery of the same message changes nothing.
    handler("fine_tune_done")(servicebus_message(message.body, message_id=message.message_id))
    assert _status("v1")[1]["job"] == done["job"]


def test_status_of_a_version_nobody_asked_to_promote_is_404(app_container: Container) -> None:
    assert _status("v9")[0] == 404
    assert _post({"model_name": "ft:local-base:x:1", "force": True, "dry_run": True})[0] == 202
    code, body = _status("v1")
    assert (code, body["job"]["state"], body["job"]["dry_run"]) == (200, "queued", True)
