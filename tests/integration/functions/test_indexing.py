"""The app as the Functions host indexes it: names, bindings, app settings, auth level, no import work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.functions.harness import indexed

REPO = Path(__file__).resolve().parents[3]


def _bindings(name: str) -> list[dict[str, object]]:
    return json.loads(indexed()[name].get_function_json())["bindings"]  # type: ignore[no-any-return]


def test_every_trigger_is_indexed_with_its_binding() -> None:
    assert set(indexed()) == {
        "label_changed_episodes",
        "build_datasets",
        "fine_tune_jobs",
        "fine_tune_done",
        "list_episodes",
        "get_episode",
        "label_episode",
        "label_batch",
        "dataset_info",
        "training_status",
        "promote_model",
        "promotion_status",
        "review_queue",
        "judge_report",
        "list_golden",
        "import_golden",
        "loop_status",
        "add_episode_to_golden",
        "list_agents",
        "whoami",
        "console_page",
    }
    [feed] = _bindings("label_changed_episodes")
    assert feed["type"] == "cosmosDBTrigger"
    assert feed["connection"] == "COSMOS_CONNECTION"  # an app setting name, never a secret
    assert (feed["databaseName"], feed["containerName"], feed["leaseContainerName"]) == (
        "agents",
        "rl_episodes",
        "leases",
    )
    [timer] = _bindings("build_datasets")
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "%DATASET_TIMER_SCHEDULE%"
    for name, queue in (("fine_tune_jobs", "fine-tune-jobs"), ("fine_tune_done", "fine-tune-done")):
        [bus] = _bindings(name)
        assert (bus["type"], bus["queueName"], bus["connection"]) == (
            "serviceBusTrigger",
            queue,
            "SERVICEBUS_CONNECTION",
        )


def test_http_routes_and_function_auth_level() -> None:
    routes = {}
    for name, fn in indexed().items():
        trigger = next((b for b in _bindings(name) if b["type"] == "httpTrigger"), None)
        if trigger is None:
            continue
        # The console's static page is the one anonymous route: files with no data (App Service
        # authentication guards the app); every API route needs the function key.
        assert trigger["authLevel"] == ("ANONYMOUS" if name == "console_page" else "FUNCTION"), name
        assert fn.is_http_function()
        routes[name] = (trigger["route"], tuple(trigger["methods"]))
    assert routes == {
        "list_episodes": ("episodes", ("GET",)),
        "get_episode": ("episodes/{episode_id}", ("GET",)),
        "label_episode": ("episodes/{episode_id}/label", ("POST",)),
        "label_batch": ("label-batch", ("POST",)),
        "dataset_info": ("datasets/{name}", ("GET",)),
        "training_status": ("training/{job_id}", ("GET",)),
        "promote_model": ("models/{agent_id}/promote", ("POST",)),
        "promotion_status": ("models/{agent_id}/promotions/{version}", ("GET",)),
        "review_queue": ("review-queue", ("GET",)),
        "judge_report": ("judge-report", ("GET",)),
        "list_golden": ("golden", ("GET",)),
        "import_golden": ("golden", ("POST",)),
        "loop_status": ("status", ("GET",)),
        "add_episode_to_golden": ("episodes/{episode_id}/golden", ("POST",)),
        "list_agents": ("agents", ("GET",)),
        "whoami": ("whoami", ("GET",)),
        "console_page": ("console/{*path}", ("GET",)),
    }


def test_the_function_app_serves_the_shared_api_route_for_route() -> None:
    """One API shape: every route of lightning.api is a Function with the same name, path and method
    (the console serves the same table)."""
    from lightning.api import ROUTES

    for route in ROUTES:
        trigger = next(b for b in _bindings(route.name) if b["type"] == "httpTrigger")
        assert (trigger["route"], tuple(trigger["methods"])) == (route.path, (route.method,)), route.name


def test_importing_the_app_builds_nothing() -> None:
    """The host imports function_app.py just to index it: no SDK client, no settings read, no network."""
    code = (
        "import sys, function_app\n"
        "heavy = [m for m in ('azure.cosmos', 'azure.servicebus', 'azure.identity', 'openai', 'kubernetes',"
        " 'sqlite3', 'lightning.bootstrap', 'lightning.config') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_host_json_and_settings_example() -> None:
    host = json.loads((REPO / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensionBundle"]["version"].startswith("[4.")
    bus = host["extensions"]["serviceBus"]
    assert bus["autoCompleteMessages"] is True
    assert bus["maxConcurrentCalls"] >= 1
    # Retry policies are function-level for the Cosmos DB and timer triggers (test_retries.py).
    assert "retry" not in host
    example = json.loads((REPO / "local.settings.json.example").read_text())["Values"]
    assert example["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert "COSMOS_CONNECTION__accountEndpoint" in example
    assert "SERVICEBUS_CONNECTION__fullyQualifiedNamespace" in example
    assert "DATASET_TIMER_SCHEDULE" in example
    secrets = (
        "COSMOS_KEY",
        "SERVICEBUS_CONNECTION_STRING",
        "OPENAI_API_KEY",
        "AccountKey",
        "SharedAccessKey",
    )
    assert not any(secret in json.dumps(example) for secret in secrets)
