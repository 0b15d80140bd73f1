"""ModelDeployer adapters: make a fine-tuned model callable before agents switch to it.

Built by ``Container.deployer``; used by the promotion service.

- ``AzureOpenAIDeployer`` (``LIGHTNING_TRAINER=azure-openai``): an Azure OpenAI fine-tuned model must be
  deployed before it serves requests. It creates (or updates) the deployment through the management
  plane with ``azure-mgmt-cognitiveservices`` —
  ``PUT …/providers/Microsoft.CognitiveServices/accounts/{account}/deployments/{name}`` with model format
  ``OpenAI``, the fine-tuned model id, version ``1`` and the sku/capacity from settings — and waits for
  ARM's asynchronous operation to succeed. Needs ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP`` and
  ``AZURE_OPENAI_ACCOUNT``; authenticates with ``DefaultAzureCredential`` (the identity needs the
  "Cognitive Services Contributor" role on the account).
- ``ServedAsIsDeployer`` (``local`` and ``openai``): the model serves as soon as it exists, under its own
  name; ``deploy`` only checks that the endpoint lists it, so a typo fails before any rollout.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.domain.errors import NotFound, ProviderError, TransientProviderError

logger = logging.getLogger(__name__)

DEFAULT_DEPLOY_TIMEOUT = 1800.0  # fine-tuned deployments take minutes on Azure; the loop waits this long


class AzureOpenAIDeployer:
    """Model deployments on an Azure OpenAI (Cognitive Services) account."""

    def __init__(
        self,
        *,
        client: Any,
        resource_group: str,
        account: str,
        sku: str = "Standard",
        capacity: int = 1,
        timeout: float = DEFAULT_DEPLOY_TIMEOUT,
    ) -> None:
        self.client = client
        self.resource_group = resource_group
        self.account = account
        self.sku = sku
        self.capacity = capacity
        self.timeout = timeout

    @classmethod
    def connect(
        cls,
        *,
        subscription_id: str,
        resource_group: str,
        account: str,
        management_endpoint: str = "https://management.azure.com",
        sku: str = "Standard",
        capacity: int = 1,
        credential: Any = None,
        **client_kwargs: Any,
    ) -> AzureOpenAIDeployer:
        """The management-plane client for ``account``; ``DefaultAzureCredential`` unless ``credential`` is
        given. ``client_kwargs`` go to the SDK client (e.g. ``connection_verify`` for a private CA)."""
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        endpoint = management_endpoint.rstrip("/")
        client_kwargs.setdefault("credential_scopes", [f"{endpoint}/.default"])  # sovereign clouds too
        client = CognitiveServicesManagementClient(
            credential, subscription_id, base_url=endpoint, **client_kwargs
        )
        return cls(client=client, resource_group=resource_group, account=account, sku=sku, capacity=capacity)

    def deploy(self, *, model_name: str, deployment_name: str) -> str:
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku

        body = Deployment(
            properties=DeploymentProperties(
                model=DeploymentModel(format="OpenAI", name=model_name, version="1")
            ),
            sku=Sku(name=self.sku, capacity=self.capacity),
        )
        try:
            poller = self.client.deployments.begin_create_or_update(
                self.resource_group, self.account, deployment_name, body
            )
            result = poller.result(timeout=self.timeout)
        except HttpResponseError as exc:
            raise self._error(exc, deployment_name, model_name) from None
        except AzureError as exc:  # connection problems, timeouts in the transport
            raise TransientProviderError(
                f"Azure Resource Manager unreachable while deploying {deployment_name}: {exc}; retry later",
                provider="azure-openai",
            ) from None
        if not poller.done():
            raise TransientProviderError(
                f"deployment {deployment_name} of {model_name} is still provisioning after {self.timeout:g}s; "
                "run promote-model again later (it reuses the deployment)",
                provider="azure-openai",
            )
        state = getattr(getattr(result, "properties", None), "provisioning_state", None)
        if state not in (None, "Succeeded"):
            raise ProviderError(
                f"deployment {deployment_name} of {model_name} ended {state}", provider="azure-openai"
            )
        logger.info("deployed %s as %s on %s", model_name, deployment_name, self.account)
        return deployment_name

    def delete(self, deployment_name: str) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            self.client.deployments.begin_delete(self.resource_group, self.account, deployment_name).result(
                timeout=self.timeout
            )
        except ResourceNotFoundError:
            return
        except HttpResponseError as exc:
            raise self._error(exc, deployment_name, None) from None

    def _error(self, exc: Any, deployment_name: str, model_name: str | None) -> ProviderError:
        status = getattr(exc, "status_code", None)
        code = getattr(getattr(exc, "error", None), "code", None)
        message = (
            getattr(getattr(exc, "error", None), "message", None) or getattr(exc, "message", None) or str(exc)
        )
        what = f"deployment {deployment_name}" + (f" of {model_name}" if model_name else "")
        where = f"account {self.account} in resource group {self.resource_group}"
        if status in (401, 403):
            return ProviderError(
                f"Azure refused {what} on {where} ({status} {code or ''}: {message}); give the identity the "
                "'Cognitive Services Contributor' role on the account",
                provider="azure-openai",
                status_code=status,
            )
        if status == 404:
            return ProviderError(
                f"{where} not found while creating {what} ({message}); check AZURE_SUBSCRIPTION_ID, "
                "AZURE_RESOURCE_GROUP and AZURE_OPENAI_ACCOUNT",
                provider="azure-openai",
                status_code=status,
            )
        if status in (408, 429) or (status is not None and status >= 500):
            return TransientProviderError(
                f"Azure could not create {what} now ({status}: {message}); retry later",
                provider="azure-openai",
                status_code=status,
            )
        return ProviderError(
            f"Azure could not create {what} on {where} ({code or status}: {message})",
            provider="azure-openai",
            status_code=status,
        )


class ServedAsIsDeployer:
    """Local model server and OpenAI: no deployment step; the model is called by its own name."""

    def __init__(self, *, client: Any) -> None:
        self.client = client  # an ``openai.OpenAI`` (``lightning.adapters.openai.client.make_openai_client``)

    def deploy(self, *, model_name: str, deployment_name: str) -> str:
        del deployment_name  # nothing to create: agents call the model itself
        import openai

        try:
            names = {model.id for model in self.client.models.list()}
        except openai.APIConnectionError as exc:
            raise TransientProviderError(
                f"cannot reach the model endpoint {self.client.base_url} to check {model_name} ({exc}); "
                "is the model server running (`lightning-loop serve-models`)?",
                provider="openai",
            ) from None
        except openai.APIStatusError as exc:
            raise ProviderError(
                f"listing models at {self.client.base_url} failed ({exc.status_code}): {exc.message}",
                provider="openai",
                status_code=exc.status_code,
            ) from None
        if model_name not in names:
            raise NotFound(
                "model",
                model_name,
                hint=f"{self.client.base_url} does not serve it; check the name with get-training-status",
            )
        return model_name

    def delete(self, deployment_name: str) -> None:
        del deployment_name  # nothing was created
