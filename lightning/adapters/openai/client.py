"""One place that builds an ``openai`` client for an ``OpenAIEndpoint``.

- ``local``: ``OpenAI(base_url=…)`` – the project's own model server (no key needed).
- ``azure-openai``: ``AzureOpenAI`` with an Entra ID token provider (``DefaultAzureCredential`` unless given).
- ``openai``: ``OpenAI`` with an API key (and a base URL when set).

``lightning.bootstrap.openai_endpoint`` turns settings (``LIGHTNING_TRAINER``, ``LIGHTNING_MODEL_SERVER``,
``OPENAI_API_KEY``, ``AZURE_OPENAI_ENDPOINT`` …) into the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from openai import AzureOpenAI, OpenAI

from lightning.domain.errors import ConfigurationError

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
LOCAL_API_KEY = "local-model-server"  # the local server ignores keys; the SDK requires one
LOCAL_PROVIDER = "local"  # the local model server at LIGHTNING_MODEL_SERVER

Provider = Literal[
    "local",  # the project's model server (OpenAI-compatible, no key)
    "openai",  # OpenAI with an API key
    "azure-openai",  # Azure OpenAI with Entra ID
]


@dataclass(frozen=True, kw_only=True)
class OpenAIEndpoint:
    """Where the ``openai`` SDK goes, and with what."""

    provider: Provider
    base_url: str | None = None
    """local: the model server's ``…/v1``; openai: a base URL or None; azure-openai: the resource endpoint."""
    api_key: str | None = field(default=None, repr=False)
    """openai only."""
    api_version: str | None = None
    """azure-openai only."""


def make_openai_client(
    endpoint: OpenAIEndpoint, *, credential: Any = None, max_retries: int = 0, timeout: float = 60.0
) -> OpenAI:
    """A client for ``endpoint``. Retries are ours (``max_retries=0``) so backoff is observable."""
    if endpoint.provider == LOCAL_PROVIDER:
        return OpenAI(
            base_url=endpoint.base_url,
            api_key=LOCAL_API_KEY,
            max_retries=max_retries,
            timeout=timeout,
        )
    if endpoint.provider == "openai":
        return OpenAI(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=max_retries,
            timeout=timeout,
        )
    if not endpoint.base_url:
        raise ConfigurationError("Azure OpenAI needs its endpoint (https://<resource>.openai.azure.com)")
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider

    token_provider = get_bearer_token_provider(credential or DefaultAzureCredential(), COGNITIVE_SCOPE)
    return AzureOpenAI(
        azure_endpoint=endpoint.base_url,
        api_version=endpoint.api_version,
        azure_ad_token_provider=token_provider,
        max_retries=max_retries,
        timeout=timeout,
    )
