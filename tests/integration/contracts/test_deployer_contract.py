"""The ModelDeployer contract: the recording fake, ``ServedAsIsDeployer`` on the local model server and
``AzureOpenAIDeployer`` (real azure-mgmt-cognitiveservices client) on the ARM stand-in
(``tests/standins/arm.py``) all make a model callable under the name they return, deploy idempotently,
refuse with an error from the tree, and delete idempotently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lightning.domain.errors import LightningError
from lightning.ports.deploy import ModelDeployer

DEPLOYMENT = "autonomous-agent-v3"


@dataclass
class Backend:
    deployer: ModelDeployer
    model: str  # a model this backend can deploy
    serves: Callable[[str], bool]  # is the returned name callable now?
    refuse: Callable[[], str]  # arrange a refusal; returns the model name to deploy


class _Token:
    def __init__(self) -> None:
        self.token = "arm-test-token"
        self.expires_on = int(time.time()) + 3600


class _Credential:
    def get_token(self, *scopes: str, **kwargs: Any) -> _Token:
        del scopes, kwargs
        return _Token()


@pytest.fixture(scope="module")
def arm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.standins.arm import start

    server, state = start(tmp_path_factory.mktemp("arm-contract"))
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(
    params=[
        "fake",
        pytest.param("served_as_is", marks=pytest.mark.model_server),
        pytest.param("azure", marks=pytest.mark.azure),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    from lightning.config import Settings

    if request.param == "fake":
        from tests.fakes.rollout import RecordingDeployer

        fake = RecordingDeployer()

        def refuse_fake() -> str:
            fake.refuse = "quota exceeded"
            return "ft:gpt-4o-mini:autonomous-agent:abc"

        return Backend(
            fake,
            "ft:gpt-4o-mini:autonomous-agent:abc",
            lambda name: name in {d for _, d in fake.deployed},
            refuse_fake,
        )
    if request.param == "served_as_is":
        from lightning.adapters.azure_openai.deployments import ServedAsIsDeployer
        from lightning.adapters.openai.client import OpenAIEndpoint, make_openai_client

        server = request.getfixturevalue("model_server")
        deployer = ServedAsIsDeployer(
            client=make_openai_client(
                OpenAIEndpoint(provider="local", base_url=server.base_url), max_retries=2
            )
        )

        def listed(name: str) -> bool:
            return name in {model.id for model in deployer.client.models.list()}

        return Backend(deployer, "local-base", listed, lambda: "ft:local-base:never-trained:000000")
    from lightning.bootstrap import azure_openai_deployer

    arm = request.getfixturevalue("arm_server")
    arm.reset()
    settings = Settings(
        azure_subscription_id="00000000-1111-2222-3333-444444444444",
        azure_resource_group="rg-agents",
        azure_openai_account="aoai-agents",
        azure_management_endpoint=arm.url,
    )
    azure = azure_openai_deployer(
        settings, credential=_Credential(), connection_verify=str(arm.ca_file), polling_interval=0
    )

    def provisioned(name: str) -> bool:
        return any(
            d["name"] == name and d["properties"]["provisioningState"] == "Succeeded"
            for d in arm.deployments.values()
        )

    def refuse_azure() -> str:
        arm.fail_with = ("InsufficientQuota", "The specified capacity exceeds the available quota.")
        return "gpt-4o-mini-2024-07-18.ft-0123456789abcdef"

    return Backend(azure, "gpt-4o-mini-2024-07-18.ft-0123456789abcdef", provisioned, refuse_azure)


def test_deploy_returns_a_name_that_serves_the_model(backend: Backend) -> None:
    name = backend.deployer.deploy(model_name=backend.model, deployment_name=DEPLOYMENT)
    assert name in (backend.model, DEPLOYMENT)
    assert backend.serves(name)


def test_deploying_again_is_idempotent(backend: Backend) -> None:
    first = backend.deployer.deploy(model_name=backend.model, deployment_name=DEPLOYMENT)
    again = backend.deployer.deploy(model_name=backend.model, deployment_name=DEPLOYMENT)
    assert again == first
    assert backend.serves(again)


def test_a_refusal_is_an_error_from_the_tree_with_a_message(backend: Backend) -> None:
    model = backend.refuse()
    with pytest.raises(LightningError) as refused:
        backend.deployer.deploy(model_name=model, deployment_name=DEPLOYMENT)
    assert str(refused.value).strip()


def test_delete_is_idempotent(backend: Backend) -> None:
    name = backend.deployer.deploy(model_name=backend.model, deployment_name=DEPLOYMENT)
    backend.deployer.delete(DEPLOYMENT)
    backend.deployer.delete(DEPLOYMENT)
    backend.deployer.delete("never-deployed")
    if name == DEPLOYMENT:  # a deployment of its own is gone; a model served as is stays served
        assert not backend.serves(name)
