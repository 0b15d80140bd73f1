"""One place that builds an ``openai`` client for the configured trainer.

- ``local``: ``OpenAI(base_url=LIGHTNING_MODEL_SERVER)`` – the project's own model server (no key needed).
- ``azure-openai``: ``AzureOpenAI`` with an Entra ID token provider (``DefaultAzureCredential``).
- ``openai``: ``OpenAI`` with ``OPENAI_API_KEY`` (and ``OPENAI_BASE_URL`` when set).
"""

from __future__ import annotations

from typing import Any

from openai import AzureOpenAI, OpenAI

from lightning.config import Settings
from lightning.domain.errors import ConfigurationError

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
LOCAL_API_KEY = "local-model-server"  # the local server ignores keys; the SDK requires one
LOCAL_PROVIDER = "local"  # settings.trainer for the local model server at LIGHTNING_MODEL_SERVER


def make_openai_client(
    settings: Settings, *, credential: Any = None, max_retries: int = 0, timeout: float = 60.0
) -> OpenAI:
    """A client for ``settings.trainer``. Retries are ours (``max_retries=0``) so backoff is observable."""
    kind = settings.trainer
    if kind == LOCAL_PROVIDER:
        return OpenAI(
            base_url=settings.lightning_model_server,
            api_key=LOCAL_API_KEY,
            max_retries=max_retries,
            timeout=timeout,
        )
    if kind == "openai":
        if settings.openai_api_key is None:
            raise ConfigurationError("LIGHTNING_TRAINER=openai needs OPENAI_API_KEY")
        return OpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            max_retries=max_retries,
            timeout=timeout,
        )
    if not settings.azure_openai_endpoint:
        raise ConfigurationError("LIGHTNING_TRAINER=azure-openai needs AZURE_OPENAI_ENDPOINT")
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider

    token_provider = get_bearer_token_provider(credential or DefaultAzureCredential(), COGNITIVE_SCOPE)
    return AzureOpenAI(
        azure_endpoint=settings.azure_openai_endpoint,
        api_version=settings.azure_openai_api_version,
        azure_ad_token_provider=token_provider,
        max_retries=max_retries,
        timeout=timeout,
    )
