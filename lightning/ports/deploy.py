"""ModelDeployer: make a fine-tuned model callable (Azure OpenAI deployment; a no-op locally).

Implemented by ``lightning.adapters.azure_openai.deployments`` (``AzureOpenAIDeployer``,
``ServedAsIsDeployer``) and ``tests.fakes.rollout.RecordingDeployer``; called by the promotion service
before the rollout. Every implementation passes ``tests/integration/contracts/test_deployer_contract.py``:
``deploy`` returns the name agents call (the deployment's, or the model's own when it is served as is),
deploying again is idempotent, a refusal is a ``LightningError`` that says why, and ``delete`` of a
missing deployment does nothing.
"""

from __future__ import annotations

from typing import Protocol


class ModelDeployer(Protocol):
    def deploy(self, *, model_name: str, deployment_name: str) -> str:
        """Create or update the deployment and wait until it serves; returns the name agents call."""
        ...

    def delete(self, deployment_name: str) -> None:
        """Remove the deployment; nothing happens when there is none."""
        ...
