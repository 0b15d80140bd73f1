"""``openai`` SDK errors → the domain's error tree, for every adapter that speaks the OpenAI API.

A connection failure to the local model server (provider ``local``, the client ``make_openai_client``
builds for ``LIGHTNING_TRAINER=local``) says how to start it.
"""

from __future__ import annotations

from typing import Any

import openai

from lightning.adapters.openai.client import LOCAL_PROVIDER
from lightning.adapters.retry import is_transient_status, parse_retry_after
from lightning.domain.errors import ProviderError, TransientProviderError

LOCAL_SERVER_HINT = "start it with `lightning-loop serve-models` or set LIGHTNING_MODEL_SERVER"


def error_message(error: openai.APIStatusError) -> str:
    """The provider's own message from the error body (``{"error": {"message": …}}``)."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return error.message


def translate_error(
    error: openai.OpenAIError, *, what: str, provider: str, base_url: Any, not_found_hint: str = ""
) -> ProviderError:
    """429/5xx, timeouts and lost connections are transient (with Retry-After); the rest is permanent."""
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        message = error_message(error)
        if is_transient_status(status):
            return TransientProviderError(
                f"{what}: {provider} answered HTTP {status}: {message}",
                provider=provider,
                status_code=status,
                retry_after=parse_retry_after(dict(error.response.headers)),
            )
        hint = not_found_hint if status == 404 else ""
        return ProviderError(
            f"{what}: {provider} refused (HTTP {status}): {message}{hint}",
            provider=provider,
            status_code=status,
        )
    if isinstance(error, openai.APITimeoutError):
        return TransientProviderError(f"{what}: {provider} timed out", provider=provider)
    if isinstance(error, openai.APIConnectionError):
        if provider == LOCAL_PROVIDER:
            return TransientProviderError(
                f"{what}: cannot reach the local model server at {base_url} ({error.__cause__ or error}); "
                f"{LOCAL_SERVER_HINT}",
                provider=provider,
            )
        return TransientProviderError(
            f"{what}: cannot reach {provider} at {base_url} ({error.__cause__ or error})", provider=provider
        )
    return ProviderError(f"{what}: {error}", provider=provider)
