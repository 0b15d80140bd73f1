"""ModelDeployer: make a fine-tuned model callable (Azure OpenAI deployment; a no-op locally)."""

from __future__ import annotations

from typing import Protocol


class ModelDeployer(Protocol):
    def deploy(self, *, model_name: str, deployment_name: str) -> str:
        """Create or update the deployment and wait until it serves; returns the deployment name."""
        ...

    def delete(self, deployment_name: str) -> None: ...
