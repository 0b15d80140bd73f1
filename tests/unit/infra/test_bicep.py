"""The Bicep infrastructure (``infra/bicep/main.bicep`` + ``modules/``) against the app and the docs.

No Bicep compiler runs here: the files are parsed with ``pycep-parser`` (``tests/unit/infra/bicep.py``)
and values are followed from the module that uses them to where ``main.bicep`` makes them. What a
compiler would catch between files — a module parameter nobody passes, an argument no module declares —
is checked here too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lightning.config import Settings
from tests.unit.infra.bicep import (
    BICEP,
    BicepRefusal,
    Template,
    accessor_path,
    evaluate,
    main,
    modules,
    resource_config,
)

EXPECTED_MODULES = {
    "monitoring": "modules/monitoring.bicep",
    "storage": "modules/storage.bicep",
    "cosmos": "modules/cosmos.bicep",
    "serviceBus": "modules/servicebus.bicep",
    "openAi": "modules/openai.bicep",
    "identity": "modules/identity.bicep",
    "functions": "modules/functions.bicep",
}

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
    "ROLLOUT_ENABLED",
    "DATASET_MIN_EPISODES",
    "DATASET_MIN_REWARD",
    "DATASET_MIN_HOURS_BETWEEN",
    "FINE_TUNE_POLL_SECONDS",
    "PROMOTION_TOLERANCE",
    "LIGHTNING_EVALUATOR",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
}

# Literal values the app depends on, wherever in the templates they are made.
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
    "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-mini",
    "DATASET_TIMER_SCHEDULE": "0 */30 * * * *",
    "LIGHTNING_EVALUATOR": "task_adherence",
}

COSMOS_CONTAINERS = {
    "rl_episodes": ["/agent_id"],
    "rl_datasets": ["/agent_id"],
    "rl_training_runs": ["/agent_id"],
    "rl_models": ["/agent_id"],
    "golden": ["/agent_id"],
    "leases": ["/id"],
}

ROLE_IDS = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "serviceBusDataSender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
    "serviceBusDataReceiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
    "cognitiveServicesOpenAIContributor": "a001fd3d-188f-4b5d-821b-7da978bf7442",
    "cognitiveServicesOpenAIUser": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
    "cognitiveServicesContributor": "25fbc0a9-bd7f-42a3-aa2a-32b5e7bcf6ed",
}
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"

# principal → {(scope resource type, role)}; "cosmos" is the Cosmos DB data-plane SQL role.
EXPECTED_ROLES = {
    "functionIdentity": {
        ("Microsoft.Storage/storageAccounts", "storageBlobDataOwner"),
        ("Microsoft.ServiceBus/namespaces", "serviceBusDataSender"),
        ("Microsoft.ServiceBus/namespaces", "serviceBusDataReceiver"),
        ("Microsoft.CognitiveServices/accounts", "cognitiveServicesOpenAIContributor"),
        ("Microsoft.CognitiveServices/accounts", "cognitiveServicesContributor"),
        ("Microsoft.DocumentDB/databaseAccounts", "cosmos"),
    },
    "agentIdentity": {
        ("Microsoft.CognitiveServices/accounts", "cognitiveServicesOpenAIUser"),
        ("Microsoft.DocumentDB/databaseAccounts", "cosmos"),
    },
    "principalId": {
        ("Microsoft.CognitiveServices/accounts", "cognitiveServicesOpenAIUser"),
        ("Microsoft.DocumentDB/databaseAccounts", "cosmos"),
    },
}

SECRET_MARKERS = (
    "AccountKey=",
    "SharedAccessKey=",
    "listKeys",
    "listConnectionStrings",
    "primaryKey",
    "primaryConnectionString",
)


@pytest.fixture(scope="module")
def functions() -> Template:
    return modules()["functions"]


def app_settings(functions: Template) -> dict[str, Any]:
    site = functions.only("Microsoft.Web/sites")
    entries = site["properties"]["siteConfig"]["appSettings"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), "an app setting is declared twice"
    return {entry["name"]: entry["value"] for entry in entries}


# --- composition ------------------------------------------------------------------------------------


def test_main_composes_the_modules_in_one_resource_group() -> None:
    root = main()
    assert root.parsed["globals"]["scope"] == {"value": "subscription"}
    assert {name: call["detail"]["path"] for name, call in root.modules.items()} == EXPECTED_MODULES
    (rg,) = root.resources_of_type("Microsoft.Resources/resourceGroups").values()
    assert rg["name"] == "rg-${environmentName}"
    assert all(call["config"]["scope"] == "rg" for call in root.modules.values())
    on_disk = {f"modules/{p.name}" for p in (BICEP / "modules").glob("*.bicep")}
    assert on_disk == set(EXPECTED_MODULES.values())


@pytest.mark.parametrize("symbol", sorted(EXPECTED_MODULES))
def test_main_passes_every_required_parameter_and_no_unknown_one(symbol: str) -> None:
    module = modules()[symbol]
    required = {name for name, p in module.params.items() if p["default"] is None}
    assert required, "pycep reports a missing default as None"
    assert required - set(module.args) == set(), "parameters without a default that main does not pass"
    assert set(module.args) - set(module.params) == set(), "arguments the module does not declare"


def test_every_module_tags_its_resources_for_azd() -> None:
    for symbol, module in modules().items():
        assert module.resolve(module.args["tags"])["'azd-env-name'"] == "environmentName", symbol
        for name, resource in module.resources.items():
            if not resource.get("existing") and "Microsoft.Authorization" not in resource["type"]:
                if "/" in resource["type"].split("/", 1)[1]:
                    continue  # child resources inherit
                assert "tags" in resource_config(resource), f"{symbol}.{name} has no tags"


def test_no_template_builds_anything_from_a_key() -> None:
    for path in [BICEP / "main.bicep", *sorted((BICEP / "modules").glob("*.bicep"))]:
        text = path.read_text()
        for marker in SECRET_MARKERS:
            assert marker not in text, f"{path.name} uses {marker}"


# --- app settings ----------------------------------------------------------------------------------


def test_every_app_setting_is_a_settings_field_or_a_connection_setting(functions: Template) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    unknown = [
        name
        for name in app_settings(functions)
        if name not in fields
        and name not in CONNECTION_SETTINGS
        and not name.startswith(CONNECTION_SETTING_PREFIXES)
    ]
    assert unknown == [], f"app settings that lightning.config.Settings does not read: {unknown}"


def test_the_required_app_settings_are_present(functions: Template) -> None:
    assert REQUIRED_APP_SETTINGS - set(app_settings(functions)) == set()


def test_app_settings_carry_the_values_the_app_expects(functions: Template) -> None:
    settings = app_settings(functions)
    assert {name: functions.resolve(settings[name]) for name in EXPECTED_VALUES} == EXPECTED_VALUES


def test_queue_max_delivery_count_matches_settings_and_the_queues(functions: Template) -> None:
    value = app_settings(functions)["QUEUE_MAX_DELIVERY_COUNT"]["function"]
    assert value["type"] == "string"
    count = functions.resolve(value["parameters"]["value_to_convert"])
    assert count == Settings.model_fields["queue_max_delivery_count"].default == 5
    bus = modules()["serviceBus"]
    for queue in bus.resources_of_type("Microsoft.ServiceBus/namespaces/queues").values():
        assert bus.resolve(queue["properties"]["maxDeliveryCount"]) == count


def test_endpoints_come_from_the_resources_that_own_them(functions: Template) -> None:
    settings = app_settings(functions)
    cosmos, endpoint = functions.trace(settings["COSMOS_ENDPOINT"])
    assert (cosmos.path.name, accessor_path(endpoint)) == (
        "cosmos.bicep",
        ["cosmos", "properties", "documentEndpoint"],
    )
    assert functions.trace(settings["COSMOS_CONNECTION__accountEndpoint"]) == (cosmos, endpoint)
    openai, endpoint = functions.trace(settings["AZURE_OPENAI_ENDPOINT"])
    assert (openai.path.name, accessor_path(endpoint)) == (
        "openai.bicep",
        ["openAi", "properties", "endpoint"],
    )
    storage, blob = functions.trace(settings["AZURE_STORAGE_ACCOUNT_URL"])
    assert (storage.path.name, accessor_path(blob)) == (
        "storage.bicep",
        ["storage", "properties", "primaryEndpoints", "blob"],
    )
    bus, fqdn = functions.trace(settings["SERVICEBUS_NAMESPACE"])
    assert (bus.path.name, fqdn) == ("servicebus.bicep", "${serviceBus.name}.servicebus.windows.net")
    assert functions.trace(settings["SERVICEBUS_CONNECTION__fullyQualifiedNamespace"]) == (bus, fqdn)


def test_the_rollout_is_off_until_a_cluster_is_given(functions: Template) -> None:
    rollout = app_settings(functions)["ROLLOUT_ENABLED"]["operator"]
    assert rollout["type"] == "conditional"
    condition = rollout["operands"]["condition"]["function"]
    assert (condition["type"], condition["parameters"]["item_to_test"]) == ("empty", "k8sApiServer")
    assert (rollout["operands"]["true_value"], rollout["operands"]["false_value"]) == ("false", "true")
    assert main().params["k8sApiServer"]["default"] == ""


# --- Function App ----------------------------------------------------------------------------------


def test_function_app_runs_python_311_on_linux_flex_consumption(functions: Template) -> None:
    app = functions.only("Microsoft.Web/sites")
    plan = functions.only("Microsoft.Web/serverfarms")

    assert app["kind"] == "functionapp,linux"
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    assert app["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    # Flex Consumption rejects these settings: the runtime comes from functionAppConfig alone.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(app_settings(functions))
    assert "dotnet" not in json.dumps(app).lower()
    assert app["properties"]["httpsOnly"] is True
    assert app["properties"]["siteConfig"]["ftpsState"] == "Disabled"


def test_azd_deploys_the_loop_service_to_the_function_app(functions: Template) -> None:
    tags = functions.only("Microsoft.Web/sites")["tags"]["function"]
    assert tags["type"] == "union"
    assert tags["parameters"]["arg_2"] == {"'azd-service-name'": "serviceName"}
    assert functions.resolve("serviceName") == "loop"


def test_function_app_runs_as_the_user_assigned_identity(functions: Template) -> None:
    app = functions.only("Microsoft.Web/sites")
    settings = app_settings(functions)

    assert app["identity"]["type"] == "UserAssigned"
    deployment_storage = app["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment_storage["authentication"]["type"] == "UserAssignedIdentity"
    identity, resource_id = functions.trace(
        deployment_storage["authentication"]["userAssignedIdentityResourceId"]
    )
    assert (identity.path.name, accessor_path(resource_id)) == ("identity.bicep", ["functionIdentity", "id"])
    assert (
        identity.resources["functionIdentity"]["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    )
    for name in (
        "AZURE_CLIENT_ID",
        "AzureWebJobsStorage__clientId",
        "COSMOS_CONNECTION__clientId",
        "SERVICEBUS_CONNECTION__clientId",
    ):
        where, value = functions.trace(settings[name])
        assert (where.path.name, accessor_path(value)) == (
            "identity.bicep",
            ["functionIdentity", "properties", "clientId"],
        ), name


def test_the_app_is_deployed_from_the_storage_modules_container(functions: Template) -> None:
    target = functions.only("Microsoft.Web/sites")["properties"]["functionAppConfig"]["deployment"]["storage"]
    storage = modules()["storage"]
    containers = {
        storage.resolve(c["name"])
        for c in storage.resources_of_type(
            "Microsoft.Storage/storageAccounts/blobServices/containers"
        ).values()
    }
    assert target["type"] == "blobContainer"
    assert target["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert functions.resolve("deploymentContainerName") == "function-app-package"
    assert containers == {"datasets", "function-app-package"}
    assert functions.resolve("storageAccountName") == functions.resolve(
        app_settings(functions)["AzureWebJobsStorage__accountName"]
    )


# --- data services ---------------------------------------------------------------------------------


def test_cosmos_database_agents_has_the_containers_and_partition_keys() -> None:
    cosmos = modules()["cosmos"]
    ((database_symbol, database),) = cosmos.resources_of_type(
        "Microsoft.DocumentDB/databaseAccounts/sqlDatabases"
    ).items()
    containers = cosmos.resources_of_type("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")

    assert cosmos.resolve(database["name"]) == "agents"
    found = {}
    for container in containers.values():
        assert container["parent"] == database_symbol
        resource = container["properties"]["resource"]
        assert resource["id"] == container["name"]
        found[container["name"]] = resource["partitionKey"]["paths"]
    assert found == COSMOS_CONTAINERS
    assert "EnableServerless" in json.dumps(cosmos.only("Microsoft.DocumentDB/databaseAccounts"))


def test_local_auth_is_disabled_everywhere() -> None:
    cosmos = modules()["cosmos"].only("Microsoft.DocumentDB/databaseAccounts")
    service_bus = modules()["serviceBus"].only("Microsoft.ServiceBus/namespaces")
    openai = modules()["openAi"].only("Microsoft.CognitiveServices/accounts")
    storage = modules()["storage"].only("Microsoft.Storage/storageAccounts")

    assert cosmos["properties"]["disableLocalAuth"] is True
    assert service_bus["properties"]["disableLocalAuth"] is True
    assert openai["kind"] == "OpenAI"
    assert openai["properties"]["disableLocalAuth"] is True
    assert openai["properties"]["customSubDomainName"]
    assert storage["properties"]["allowSharedKeyAccess"] is False
    assert storage["properties"]["allowBlobPublicAccess"] is False
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"


def test_both_queues_detect_duplicates_and_dead_letter() -> None:
    bus = modules()["serviceBus"]
    queues = {
        q["name"]: q["properties"]
        for q in bus.resources_of_type("Microsoft.ServiceBus/namespaces/queues").values()
    }
    assert bus.only("Microsoft.ServiceBus/namespaces")["sku"]["name"] == "Standard"  # duplicate detection
    assert set(queues) == {"fine-tune-jobs", "fine-tune-done"}
    for name, queue in queues.items():
        assert queue["requiresDuplicateDetection"] is True, name
        assert queue["duplicateDetectionHistoryTimeWindow"] == "P1D", name
        assert queue["lockDuration"] == "PT5M", name
        assert queue["deadLetteringOnMessageExpiration"] is True, name


def test_openai_has_the_base_deployment() -> None:
    openai = modules()["openAi"]
    deployment = openai.only("Microsoft.CognitiveServices/accounts/deployments")

    assert openai.resolve(deployment["name"]) == "gpt-4o-mini"
    assert openai.resolve(deployment["properties"]["model"]["name"]) == "gpt-4o-mini"
    assert openai.resolve(deployment["properties"]["model"]["version"]) == "2024-07-18"
    account = openai.only("Microsoft.CognitiveServices/accounts")
    assert openai.resolve(account["location"]) == "location"  # its own parameter: openAiLocation in main
    assert openai.args["location"] == "openAiLocation"


# --- network exposure ------------------------------------------------------------------------------

PUBLIC_ACCESS = {
    "storage": "Microsoft.Storage/storageAccounts",
    "cosmos": "Microsoft.DocumentDB/databaseAccounts",
    "serviceBus": "Microsoft.ServiceBus/namespaces",
    "openAi": "Microsoft.CognitiveServices/accounts",
    "functions": "Microsoft.Web/sites",
}


@pytest.mark.parametrize(("symbol", "type_"), sorted(PUBLIC_ACCESS.items()))
def test_public_network_access_is_the_parameter_on_every_data_service(symbol: str, type_: str) -> None:
    module = modules()[symbol]
    resource = module.only(type_)
    assert resource["properties"]["publicNetworkAccess"] == "publicNetworkAccess"
    assert module.args["publicNetworkAccess"] == "checkedPublicNetworkAccess"
    assert {d["type"]: d["argument"] for d in module.params["publicNetworkAccess"]["decorators"]}[
        "allowed"
    ] == [
        "Enabled",
        "Disabled",
    ]
    assert module.params["publicNetworkAccess"]["default"] is None  # main always decides


def test_public_network_access_is_enabled_by_default_and_disabled_is_refused_with_a_reason() -> None:
    root = main()
    param = root.params["publicNetworkAccess"]
    assert param["default"] == "Enabled"
    assert {d["type"]: d["argument"] for d in param["decorators"]}["allowed"] == ["Enabled", "Disabled"]
    checked = root.variables["checkedPublicNetworkAccess"]["value"]

    assert evaluate(root, checked, {"publicNetworkAccess": "Enabled"}) == "Enabled"
    with pytest.raises(BicepRefusal) as refused:
        evaluate(root, checked, {"publicNetworkAccess": "Disabled"})
    message = str(refused.value)
    assert "private endpoints" in message
    assert "infra/bicep/README.md" in message
    assert "Private networking" in (BICEP / "README.md").read_text()


# --- baseName ------------------------------------------------------------------------------------------


def test_base_name_has_length_limits() -> None:
    decorators = {d["type"]: d["argument"] for d in main().params["baseName"]["decorators"]}
    assert (decorators["min_length"], decorators["max_length"]) == (3, 12)


@pytest.mark.parametrize("name", ["lightning", "ll-loop2", "abc", "a-b-c", "x1234567890y"])
def test_a_valid_base_name_passes_the_check(name: str) -> None:
    root = main()
    assert evaluate(root, root.variables["checkedBaseName"]["value"], {"baseName": name}) == name


@pytest.mark.parametrize("name", ["my_app", "Lightning", "1abc", "abc-", "a.b", "caf\u00e9", "a b", "-abc"])
def test_an_invalid_base_name_is_refused_with_the_rule(name: str) -> None:
    root = main()
    with pytest.raises(
        BicepRefusal, match=r"lowercase letters, digits and hyphens, starting with a letter"
    ) as refused:
        evaluate(root, root.variables["checkedBaseName"]["value"], {"baseName": name})
    assert f"baseName '{name}' is not valid" in str(refused.value)


def test_every_resource_name_is_built_from_the_checked_base_name() -> None:
    uses = []
    for symbol, module in modules().items():
        for name, value in module.args.items():
            if name.endswith("Name") and isinstance(value, str) and "${" in value:
                uses.append((symbol, name, value))
    assert len(uses) >= 8
    for symbol, name, value in uses:
        assert "${checkedBaseName}" in value, (symbol, name, value)
        assert "${baseName}" not in value, (symbol, name, value)
    storage_name = modules()["storage"].args["name"]["function"]
    assert storage_name["type"] == "take"
    assert "replace(checkedBaseName, '-', '')" in storage_name["parameters"]["original_value"]
    assert storage_name["parameters"]["number_to_take"] == 24


# --- roles -----------------------------------------------------------------------------------------


def test_each_identity_gets_exactly_the_roles_it_needs() -> None:
    identity = modules()["identity"]
    role_names = identity.resolve("roles")
    assert {name: role_names[name] for name in ROLE_IDS} == ROLE_IDS
    assert identity.resolve("cosmosDataContributorRoleId") == COSMOS_DATA_CONTRIBUTOR
    granted: dict[str, set[tuple[str, str]]] = {}
    for resource in identity.resources.values():
        body = resource_config(resource)
        if resource["type"] == "Microsoft.Authorization/roleAssignments":
            definition = body["properties"]["roleDefinitionId"]["function"]
            assert definition["type"] == "subscription_resource_id"
            _, role = accessor_path(definition["parameters"]["resource_name_1"])
            scope = identity.resources[body["scope"]]["type"]
        elif resource["type"] == "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments":
            assert body["properties"]["roleDefinitionId"].endswith(
                "/sqlRoleDefinitions/${cosmosDataContributorRoleId}"
            )
            role, scope = "cosmos", identity.resources[body["parent"]]["type"]
        else:
            continue
        principal = accessor_path(body["properties"]["principalId"])
        who = principal[0] if principal != ["principalId"] else "principalId"
        if who == "principalId":
            assert "condition" in resource["config"], "the developer's roles are conditional on principalId"
        granted.setdefault(who, set()).add((scope, role))
    assert granted == EXPECTED_ROLES


# --- outputs, parameters file --------------------------------------------------------------------


def test_outputs_name_what_azd_and_the_hook_need() -> None:
    outputs = set(main().outputs)
    assert {"AZURE_LOCATION", "AZURE_TENANT_ID", "AZURE_RESOURCE_GROUP"} <= outputs
    assert {
        "FUNCTION_APP_NAME",
        "COSMOS_ENDPOINT",
        "SERVICEBUS_NAMESPACE",
        "AZURE_OPENAI_ENDPOINT",
        "AGENT_IDENTITY_CLIENT_ID",
        "FUNCTION_IDENTITY_PRINCIPAL_ID",
    } <= outputs
    for name, output in main().outputs.items():
        path = accessor_path(output["value"])
        if len(path) == 3 and path[1] == "outputs":
            assert path[2] in main().module(path[0]).outputs, name
