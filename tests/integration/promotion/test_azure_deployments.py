"""AzureOpenAIDeployer through the real azure-mgmt-cognitiveservices client against the ARM stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightning.adapters.azure_openai.deployments import AzureOpenAIDeployer
from lightning.bootstrap import azure_openai_deployer
from lightning.config import Settings
from lightning.domain.errors import ConfigurationError, ProviderError
from tests.standins.arm import ArmStandIn, start

SUB, RG, ACCOUNT = "00000000-1111-2222-3333-444444444444", "rg-agents", "aoai-agents"
MODEL = "gpt-4o-mini-2024-07-18.ft-0123456789abcdef"


@pytest.fixture(scope="module")
def arm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmStandIn]:
    server, state = start(tmp_path_factory.mktemp("arm"))
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def arm(arm_server: ArmStandIn) -> ArmStandIn:
    arm_server.reset()
    return arm_server


class _Token:
    def __init__(self, token: str) -> None:
        self.token = token
        self.expires_on = int(time.time()) + 3600


class TokenCredential:
    """An azure-core TokenCredential test object: hands out a known token and records the scopes."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> _Token:
        self.scopes.append(scopes)
        return _Token("arm-test-token")


def deployer(arm: ArmStandIn, credential: TokenCredential, **overrides: Any) -> AzureOpenAIDeployer:
    settings = Settings(
        azure_subscription_id=SUB,
        azure_resource_group=RG,
        azure_openai_account=ACCOUNT,
        azure_management_endpoint=arm.url,
        deployment_sku="Standard",
        deployment_capacity=5,
        **overrides,
    )
    return azure_openai_deployer(
        settings, credential=credential, connection_verify=str(arm.ca_file), polling_interval=0
    )


def test_deploy_sends_the_exact_arm_request_and_waits(arm: ArmStandIn) -> None:
    credential = TokenCredential()
    name = deployer(arm, credential).deploy(model_name=MODEL, deployment_name="autonomous-agent-v3")

    assert name == "autonomous-agent-v3"
    put = arm.requests[0]
    assert put["method"] == "PUT"
    assert put["path"] == (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/"
        f"accounts/{ACCOUNT}/deployments/autonomous-agent-v3"
    )
    assert put["query"] == {"api-version": "2025-09-01"}
    assert put["authorization"] == "Bearer arm-test-token"
    assert put["body"] == {
        "sku": {"name": "Standard", "capacity": 5},
        "properties": {"model": {"format": "OpenAI", "name": MODEL, "version": "1"}},
    }
    # It followed the async operation until it succeeded, then read the deployment.
    polls = [r for r in arm.requests if "operationStatuses" in r["path"]]
    assert len(polls) == 3
    assert {r["authorization"] for r in arm.requests} == {"Bearer arm-test-token"}
    assert credential.scopes[0] == (f"{arm.url}/.default",)
    stored = arm.deployments[put["path"]]
    assert stored["properties"]["provisioningState"] == "Succeeded"


def test_a_failed_operation_is_a_provider_error(arm: ArmStandIn) -> None:
    arm.fail_with = ("InsufficientQuota", "The specified capacity exceeds the available quota.")
    with pytest.raises(ProviderError, match="exceeds the available quota"):
        deployer(arm, TokenCredential()).deploy(model_name=MODEL, deployment_name="autonomous-agent-v3")


def test_rbac_refusal_says_which_role_is_missing(arm: ArmStandIn) -> None:
    arm.forbidden = True
    with pytest.raises(ProviderError) as caught:
        deployer(arm, TokenCredential()).deploy(model_name=MODEL, deployment_name="autonomous-agent-v3")
    assert caught.value.status_code == 403
    assert "Cognitive Services Contributor" in str(caught.value)
    assert "AuthorizationFailed" in str(caught.value)


def test_missing_account_settings_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="AZURE_RESOURCE_GROUP, AZURE_OPENAI_ACCOUNT"):
        azure_openai_deployer(Settings(azure_subscription_id=SUB), credential=TokenCredential())
