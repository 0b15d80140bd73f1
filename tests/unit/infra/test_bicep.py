"""The Bicep infrastructure (``infra/bicep/main.bicep``) against the app and docs/functions.md.

Parsed offline with ``pycep-parser``. In its output a string literal and a reference to a parameter
or variable look alike (``'cosmos'`` and ``cosmosDatabaseName`` both come back as plain strings), so
``resolve`` replaces a string that names a parameter or variable with its value (a parameter's
default). Expressions (``identity.properties.clientId``, ``subscription()``…) stay nested dicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from lightning.config import Settings

MAIN_BICEP = Path(__file__).resolve().parents[3] / "infra" / "bicep" / "main.bicep"

# Platform, host and binding settings: read by App Service, the Functions host or its extensions, and
# by azure-identity (AZURE_CLIENT_ID) — not by Settings. Every other app setting must be a Settings field.
CONNECTION_SETTING_PREFIXES = (
    "AzureWebJobs",
    "FUNCTIONS_",
    "WEBSITE_",
    "COSMOS_CONNECTION__",
    "SERVICEBUS_CONNECTION__",
)
CONNECTION_SETTINGS = {"AZURE_CLIENT_ID"}

REQUIRED_APP_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "COSMOS_CONNECTION__accountEndpoint",
    "COSMOS_CONNECTION__credential",
    "COSMOS_CONNECTION__clientId",
    "SERVICEBUS_CONNECTION__fullyQualifiedNamespace",
    "SERVICEBUS_CONNECTION__credential",
    "SERVICEBUS_CONNECTION__clientId",
    "AZURE_CLIENT_ID",
    "DATASET_TIMER_SCHEDULE",
    "LIGHTNING_HOME",
    "LIGHTNING_STORE",
    "COSMOS_ENDPOINT",
    "COSMOS_DATABASE",
    "LIGHTNING_QUEUE",
    "SERVICEBUS_NAMESPACE",
    "LIGHTNING_BLOB",
    "AZURE_STORAGE_ACCOUNT_URL",
    "DATASETS_CONTAINER",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_OPENAI_JUDGE_DEPLOYMENT",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "AZURE_OPENAI_ACCOUNT",
    "K8S_API_SERVER",
    "K8S_USE_AKS_TOKEN",
    "K8S_NAMESPACE",
    "DATASET_MIN_EPISODES",
    "DATASET_MIN_REWARD",
    "DATASET_MIN_HOURS_BETWEEN",
    "FINE_TUNE_POLL_SECONDS",
    "PROMOTION_TOLERANCE",
    "LIGHTNING_EVALUATOR",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
}

# Literal values the app depends on (after resolving parameters and variables).
EXPECTED_VALUES = {
    "AzureWebJobsStorage__credential": "managedidentity",
    "COSMOS_CONNECTION__credential": "managedidentity",
    "SERVICEBUS_CONNECTION__credential": "managedidentity",
    "LIGHTNING_HOME": "/tmp/lightning",
    "LIGHTNING_STORE": "cosmos",
    "COSMOS_DATABASE": "agents",
    "LIGHTNING_QUEUE": "servicebus",
    "LIGHTNING_BLOB": "azure",
    "DATASETS_CONTAINER": "datasets",
    "K8S_USE_AKS_TOKEN": "true",
    "K8S_NAMESPACE": "mcp-agents",
}

COSMOS_CONTAINERS = {
    "rl_episodes": ["/agent_id"],
    "rl_datasets": ["/agent_id"],
    "rl_training_runs": ["/agent_id"],
    "rl_models": ["/agent_id"],
    "leases": ["/id"],
}

# (scope resource type, built-in role definition id) of the identity's role assignments.
EXPECTED_ROLE_ASSIGNMENTS = {
    ("Microsoft.Storage/storageAccounts", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"),  # Blob Data Owner
    ("Microsoft.ServiceBus/namespaces", "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"),  # Data Sender
    ("Microsoft.ServiceBus/namespaces", "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"),  # Data Receiver
    ("Microsoft.CognitiveServices/accounts", "a001fd3d-188f-4b5d-821b-7da978bf7442"),  # OpenAI Contributor
    ("Microsoft.CognitiveServices/accounts", "25fbc0a9-bd7f-42a3-aa2a-32b5e7bcf6ed"),  # CS Contributor
}

SECRET_MARKERS = (
    "AccountKey=",
    "SharedAccessKey=",
    "listKeys",
    "listConnectionStrings",
    "primaryKey",
    "primaryConnectionString",
)


# --- parsing and helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bicep() -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=MAIN_BICEP))


def definitions(bicep: dict[str, Any]) -> dict[str, Any]:
    """Parameter defaults and variable values by name."""
    found = {name: p.get("default") for name, p in bicep.get("parameters", {}).items()}
    found.update({name: v["value"] for name, v in bicep.get("variables", {}).items()})
    return found


def resolve(bicep: dict[str, Any], value: Any) -> Any:
    """A parameter or variable reference replaced by its value; anything else unchanged."""
    known = definitions(bicep)
    seen: set[str] = set()
    while isinstance(value, str) and value in known and value not in seen:
        seen.add(value)
        value = known[value]
    return value


def resources_of_type(bicep: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    """The ``config`` of every resource of this type, by symbolic name."""
    return {name: r["config"] for name, r in bicep["resources"].items() if r["type"] == type_}


def only_resource(bicep: dict[str, Any], type_: str) -> dict[str, Any]:
    found = resources_of_type(bicep, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


def function_app(bicep: dict[str, Any]) -> dict[str, Any]:
    return only_resource(bicep, "Microsoft.Web/sites")


def app_settings(bicep: dict[str, Any]) -> dict[str, Any]:
    entries = function_app(bicep)["properties"]["siteConfig"]["appSettings"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), "an app setting is declared twice"
    return {entry["name"]: entry["value"] for entry in entries}


def accessor_path(value: Any) -> list[str]:
    """``identity.properties.clientId`` as ``["identity", "properties", "clientId"]``; [] if not one."""
    if isinstance(value, str):
        return [value]
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    if operator.get("type") != "property_accessor":
        return []
    operands = operator["operands"]
    head = accessor_path(operands["operand_1"])
    return [*head, *accessor_path(operands["operand_2"])] if head else []


def strings_in(bicep: dict[str, Any], value: Any, seen: set[str] | None = None) -> Iterator[str]:
    """Every string an expression is built from, following parameters and variables it references."""
    seen = set() if seen is None else seen
    known = definitions(bicep)
    if isinstance(value, dict):
        for item in value.values():
            yield from strings_in(bicep, item, seen)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(bicep, item, seen)
    elif isinstance(value, str):
        yield value
        interpolated = re.findall(r"\$\{([^}]*)\}", value)
        for name in {value, *re.findall(r"[A-Za-z_]\w*", " ".join(interpolated))}:
            if name in known and name not in seen:
                seen.add(name)
                yield from strings_in(bicep, known[name], seen)


# --- app settings ----------------------------------------------------------------------------------


def test_every_app_setting_is_a_settings_field_or_a_connection_setting(bicep: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    unknown = [
        name
        for name in app_settings(bicep)
        if name not in fields
        and name not in CONNECTION_SETTINGS
        and not name.startswith(CONNECTION_SETTING_PREFIXES)
    ]
    assert unknown == [], f"app settings that lightning.config.Settings does not read: {unknown}"


def test_the_required_app_settings_are_present(bicep: dict[str, Any]) -> None:
    missing = REQUIRED_APP_SETTINGS - set(app_settings(bicep))
    assert missing == set()


def test_app_settings_carry_the_values_the_app_expects(bicep: dict[str, Any]) -> None:
    settings = app_settings(bicep)
    actual = {name: resolve(bicep, settings[name]) for name in EXPECTED_VALUES}
    assert actual == EXPECTED_VALUES


def test_queue_max_delivery_count_setting_matches_the_queues(bicep: dict[str, Any]) -> None:
    value = app_settings(bicep)["QUEUE_MAX_DELIVERY_COUNT"]
    assert value["function"]["type"] == "string"
    count = resolve(bicep, value["function"]["parameters"]["value_to_convert"])
    assert count == Settings.model_fields["queue_max_delivery_count"].default == 5


def test_no_app_setting_carries_a_key(bicep: dict[str, Any]) -> None:
    for name, value in app_settings(bicep).items():
        for text in strings_in(bicep, value):
            for marker in SECRET_MARKERS:
                assert marker not in text, f"{name} is built from {text!r}"


# --- Function App ----------------------------------------------------------------------------------


def test_function_app_runs_python_311_on_linux_flex_consumption(bicep: dict[str, Any]) -> None:
    app = function_app(bicep)
    plan = only_resource(bicep, "Microsoft.Web/serverfarms")

    assert app["kind"] == "functionapp,linux"
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    assert app["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    # Flex Consumption rejects these settings: the runtime comes from functionAppConfig alone.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(app_settings(bicep))
    assert "dotnet" not in json.dumps(app).lower()


def test_function_app_runs_as_the_user_assigned_identity(bicep: dict[str, Any]) -> None:
    app = function_app(bicep)
    settings = app_settings(bicep)
    (identity,) = resources_of_type(bicep, "Microsoft.ManagedIdentity/userAssignedIdentities")
    client_id = [identity, "properties", "clientId"]

    assert app["identity"]["type"] == "UserAssigned"
    deployment_storage = app["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment_storage["authentication"]["type"] == "UserAssignedIdentity"
    assert accessor_path(deployment_storage["authentication"]["userAssignedIdentityResourceId"]) == [
        identity,
        "id",
    ]
    for name in (
        "AZURE_CLIENT_ID",
        "AzureWebJobsStorage__clientId",
        "COSMOS_CONNECTION__clientId",
        "SERVICEBUS_CONNECTION__clientId",
    ):
        assert accessor_path(settings[name]) == client_id, name


# --- data services ---------------------------------------------------------------------------------


def test_cosmos_database_agents_has_the_containers_and_partition_keys(bicep: dict[str, Any]) -> None:
    ((database_symbol, database),) = resources_of_type(
        bicep, "Microsoft.DocumentDB/databaseAccounts/sqlDatabases"
    ).items()
    containers = resources_of_type(bicep, "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")

    assert resolve(bicep, database["name"]) == "agents"
    found = {}
    for container in containers.values():
        assert container["parent"] == database_symbol
        resource = container["properties"]["resource"]
        assert resource["id"] == container["name"]
        found[container["name"]] = resource["partitionKey"]["paths"]
    assert found == COSMOS_CONTAINERS


def test_local_auth_is_disabled_everywhere(bicep: dict[str, Any]) -> None:
    cosmos = only_resource(bicep, "Microsoft.DocumentDB/databaseAccounts")
    service_bus = only_resource(bicep, "Microsoft.ServiceBus/namespaces")
    openai = only_resource(bicep, "Microsoft.CognitiveServices/accounts")
    storage = only_resource(bicep, "Microsoft.Storage/storageAccounts")

    assert cosmos["properties"]["disableLocalAuth"] is True
    assert service_bus["properties"]["disableLocalAuth"] is True
    assert openai["kind"] == "OpenAI"
    assert openai["properties"]["disableLocalAuth"] is True
    assert openai["properties"]["customSubDomainName"]
    assert storage["properties"]["allowSharedKeyAccess"] is False
    assert storage["properties"]["allowBlobPublicAccess"] is False
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"


def test_storage_has_the_datasets_and_deployment_containers(bicep: dict[str, Any]) -> None:
    containers = resources_of_type(bicep, "Microsoft.Storage/storageAccounts/blobServices/containers")
    names = {resolve(bicep, c["name"]) for c in containers.values()}
    deployment_target = function_app(bicep)["properties"]["functionAppConfig"]["deployment"]["storage"]
    deployment_container = resolve(bicep, "deploymentContainerName")

    assert names == {"datasets", deployment_container}
    assert deployment_target["type"] == "blobContainer"
    assert deployment_target["value"].endswith("${deploymentContainerName}")
    assert all(c["properties"]["publicAccess"] == "None" for c in containers.values())


def test_both_queues_detect_duplicates_and_dead_letter_after_five_deliveries(bicep: dict[str, Any]) -> None:
    queues = {
        q["name"]: q["properties"]
        for q in resources_of_type(bicep, "Microsoft.ServiceBus/namespaces/queues").values()
    }

    assert set(queues) == {"fine-tune-jobs", "fine-tune-done"}
    for name, queue in queues.items():
        assert queue["requiresDuplicateDetection"] is True, name
        assert queue["duplicateDetectionHistoryTimeWindow"] == "P1D", name
        assert queue["lockDuration"] == "PT5M", name
        assert resolve(bicep, queue["maxDeliveryCount"]) == 5, name
        assert queue["deadLetteringOnMessageExpiration"] is True, name


def test_openai_has_the_base_deployment(bicep: dict[str, Any]) -> None:
    deployment = only_resource(bicep, "Microsoft.CognitiveServices/accounts/deployments")

    assert resolve(bicep, deployment["name"]) == "gpt-4o-mini"
    assert deployment["properties"]["model"]["name"] == "gpt-4o-mini"


# --- roles and outputs -----------------------------------------------------------------------------


def test_the_identity_gets_every_role_the_app_needs(bicep: dict[str, Any]) -> None:
    (identity,) = resources_of_type(bicep, "Microsoft.ManagedIdentity/userAssignedIdentities")
    role_ids = resolve(bicep, "roles")
    granted = set()
    for assignment in resources_of_type(bicep, "Microsoft.Authorization/roleAssignments").values():
        properties = assignment["properties"]
        role_definition = properties["roleDefinitionId"]["function"]
        assert role_definition["type"] == "subscription_resource_id"
        _, role = accessor_path(role_definition["parameters"]["resource_name_1"])
        assert accessor_path(properties["principalId"]) == [identity, "properties", "principalId"]
        granted.add((bicep["resources"][assignment["scope"]]["type"], role_ids[role]))
    cosmos_role = only_resource(bicep, "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")

    assert granted == EXPECTED_ROLE_ASSIGNMENTS
    assert accessor_path(cosmos_role["properties"]["principalId"]) == [identity, "properties", "principalId"]
    assert resolve(bicep, "cosmosDataContributorRoleId") == "00000000-0000-0000-0000-000000000002"
    assert cosmos_role["properties"]["roleDefinitionId"].endswith(
        "/sqlRoleDefinitions/${cosmosDataContributorRoleId}"
    )


def test_outputs(bicep: dict[str, Any]) -> None:
    assert {
        "functionAppName",
        "cosmosEndpoint",
        "serviceBusFqdn",
        "openAiEndpoint",
        "identityClientId",
    } <= set(bicep["outputs"])
